import type { CounterHandle } from '../core/metrics.js';

/**
 * @internal Concurrent callers for one key share one run: the first starts it, the others join
 * its promise until it settles.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  constructor(private readonly joins: CounterHandle) {}

  /** The running call for `key`, counted as a join, or `undefined`. */
  join(key: string): Promise<T> | undefined {
    const running = this.inflight.get(key);
    if (running) this.joins.inc();
    return running;
  }

  /** The running call for `key`, or a new one from `start`. */
  run(key: string, start: () => Promise<T>): Promise<T> {
    const running = this.inflight.get(key);
    if (running) {
      this.joins.inc();
      return running;
    }
    const p = start().finally(() => {
      this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }
}
