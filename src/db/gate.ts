import { ClosedError, LimitExceededError } from '../core/errors.js';

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * A counting semaphore with a bounded wait: the primary-fallback limit. Waiters are served in
 * arrival order; one that waits past its time fails with LimitExceededError.
 */
export class Gate {
  inFlight = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    readonly limit: number,
    private readonly waitMs: number,
  ) {}

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes a slot, waiting up to `waitMs` for one. */
  acquire(): Promise<void> | undefined {
    if (this.closed) return Promise.reject(new ClosedError('the DatabaseRouter is closed'));
    if (this.inFlight < this.limit) {
      this.inFlight++;
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i !== -1) this.waiters.splice(i, 1);
          reject(
            new LimitExceededError(
              `no replica is fit for reads and the primary already serves primaryFallbackLimit=${this.limit} fallback reads; waited ${this.waitMs / 1000} s (poolTimeout)`,
              { context: { option: 'primaryFallbackLimit', limit: this.limit } },
            ),
          );
        }, this.waitMs),
      };
      waiter.timer.unref?.();
      this.waiters.push(waiter);
    });
  }

  /** Gives a slot back (to the next waiter, if any). */
  release(): void {
    const next = this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve();
      return;
    }
    this.inFlight--;
  }

  /** Fails every waiter. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new ClosedError('the DatabaseRouter was closed while the read waited'));
    }
  }
}
