import type { QueueBackend } from './backend.js';
import type { TaskQueueEvents } from './events.js';

/** Seconds-scale safety poll while a wake-up signal is in place (an event may be lost). */
const SAFETY_POLL_MS = 1000;

/** What {@link TaskQueue.waitForResult} waits on between looks at the task. */
export interface SettleWatch {
  /** Resolves once a finish after this moment is sure to wake us (or after `maxMs`). */
  ready(maxMs: number): Promise<void>;
  /** Poll interval to use, or undefined to poll with the caller's growing delay. */
  readonly pollMs: number | undefined;
  /** Resolves after `ms`, on the task's finish (also one that came since the last wait), or on abort. */
  wait(ms: number, signal: AbortSignal | undefined): Promise<void>;
  /** Stops watching. */
  stop(): void;
}

interface SettleNotifier {
  onSettled(id: string, cb: () => void): () => void;
}

/**
 * Watches task `id` for its finish: through the memory backend's own signal, through the
 * queue's events (Redis), or not at all (a custom backend: plain polling).
 */
export function watchSettle(
  id: string,
  backend: QueueBackend,
  events: TaskQueueEvents | undefined,
): SettleWatch {
  let fired = false;
  let wake: (() => void) | undefined;
  const fire = () => {
    fired = true;
    wake?.();
  };
  let stop: (() => void) | undefined;
  const b = backend as QueueBackend & Partial<SettleNotifier>;
  if (typeof b.onSettled === 'function') stop = b.onSettled(id, fire);
  else if (events) stop = events.watch(id, fire);
  const watching = stop !== undefined;
  return {
    pollMs: watching ? SAFETY_POLL_MS : undefined,
    async ready(maxMs: number): Promise<void> {
      if (!events || !watching) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        events.ready(),
        new Promise<void>((r) => {
          timer = setTimeout(r, maxMs);
        }),
      ]);
      clearTimeout(timer);
    },
    wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
      if (fired) {
        fired = false;
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          wake = undefined;
          fired = false;
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        wake = done;
        signal?.addEventListener('abort', done, { once: true });
      });
    },
    stop(): void {
      stop?.();
      wake = undefined;
    },
  };
}
