/**
 * The {@link QueueBackend} contract: TaskQueue and BackgroundWorker running on the backend (what
 * users see), and the lease rules checked on the backend directly.
 */
import { randomBytes } from 'node:crypto';
import {
  BackgroundWorker,
  type BackgroundWorkerOptions,
  type QueueBackend,
  TaskQueue,
} from '../worker/index.js';
import { type SuiteOptions, prepareSuite } from './api.js';
import type { QueueContext } from './queue-context.js';
import { queueControlCases } from './queue-control-cases.js';
import { queueLeaseCases } from './queue-lease-cases.js';
import { queueRunCases } from './queue-run-cases.js';

/** What {@link describeQueueBackend}'s factory is asked for. */
export interface QueueBackendFactoryOptions {
  /**
   * The queue's name, unique to the test. Two calls with the same name must give two handles on
   * one queue, as two processes would have (a running task cancelled through one is seen by the
   * worker on the other).
   */
  name: string;
  /** Seconds a finished (completed, failed or cancelled) task and its result are kept. */
  resultTtl: number;
}

const DEFAULT_RESULT_TTL = 3600;

/**
 * Registers the `QueueBackend` contract suite (vitest `describe`/`it`) for one backend: tasks
 * submitted, claimed and run once each (ids as idempotency keys, 1200 in bulk), delays and
 * priorities, retries with backoff, dead letters and redrive, per-task timeouts, cancels of
 * queued and running tasks (from another handle too), graceful stop, and the lease rules — a
 * dead consumer's task is reclaimed with a higher attempt, the old holder's calls are ignored,
 * the first result sticks, finished tasks expire after `resultTtl`. Each test uses its own queue
 * name, so the backend need not be empty.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new backend handle on the queue it is asked for; the `TaskQueue`
 *   the suite builds on it closes it.
 * @param options - See {@link SuiteOptions}.
 * @example
 * import { describeQueueBackend } from 'azscale/testing';
 * import { MemoryQueueBackend } from 'azscale/worker';
 *
 * describeQueueBackend('memory', ({ name, resultTtl }) =>
 *   new MemoryQueueBackend({ name, resultTtl }),
 * );
 */
export function describeQueueBackend(
  name: string,
  factory: (options: QueueBackendFactoryOptions) => QueueBackend | Promise<QueueBackend>,
  options?: SuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, expect, afterEach } = t;
  const it = (title: string, fn: () => Promise<void>) => t.it(title, fn, timeout);

  describe(`QueueBackend contract: ${name}`, () => {
    const opened: TaskQueue[] = [];
    const workers: BackgroundWorker[] = [];
    const open = async (queueName: string, resultTtl: number) => {
      const backend = await factory({ name: queueName, resultTtl });
      const q = new TaskQueue({ name: queueName, backend, resultTtl });
      opened.push(q);
      return q;
    };
    const ctx: QueueContext = {
      it,
      expect,
      queue: (o = {}) =>
        open(`wq-${randomBytes(5).toString('hex')}`, o.resultTtl ?? DEFAULT_RESULT_TTL),
      handle: (q) => open(q.name, q.resultTtl),
      worker<D = unknown, R = unknown>(
        q: TaskQueue,
        opts: Omit<BackgroundWorkerOptions<D, R>, 'queue'>,
      ): BackgroundWorker<D, R> {
        const w = new BackgroundWorker<D, R>({ queue: q, visibilityTimeout: 5, ...opts });
        workers.push(w as BackgroundWorker);
        return w;
      },
    };
    afterEach(async () => {
      for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
      for (const q of opened.splice(0)) await q.close();
    });

    queueRunCases(ctx);
    queueControlCases(ctx);
    queueLeaseCases(ctx);
  });
}
