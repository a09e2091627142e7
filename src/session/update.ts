import { CallbackError, ConflictError } from '../core/errors.js';
import { sleep } from '../core/timers.js';
import type { SessionStore } from './store.js';

/** @internal What the compare-and-set loop needs from the manager. */
export interface UpdateHost<T> {
  store(): SessionStore;
  ttlMs(): number;
  assertOpen(): void;
  decode(text: string | null, key: string): T;
  encode(value: T): string;
  /** Counts and reports a lost round (`willRetry` false: the last one). */
  conflict(id: string, attempt: number, willRetry: boolean): void;
}

/**
 * @internal The loop of `updateSession`: read, run `fn`, compare-and-set; on a lost race run
 * `fn` again on the fresh value, at most `maxRetries` more times, with capped full jitter.
 */
export async function runUpdate<T>(
  host: UpdateHost<T>,
  id: string,
  key: string,
  fn: (current: T) => T | undefined | Promise<T | undefined>,
  maxRetries: number,
): Promise<T> {
  const store = host.store();
  for (let attempt = 1; ; attempt++) {
    host.assertOpen();
    const before = await store.get(key);
    const current = host.decode(before, key);
    let next: T | undefined;
    try {
      next = await fn(current);
    } catch (e) {
      throw new CallbackError(
        `the update function for session ${JSON.stringify(id)} threw: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e, context: { id } },
      );
    }
    const value = next === undefined ? current : next;
    const text = host.encode(value);
    if (await store.compareAndSet(key, before, text, host.ttlMs())) {
      return host.decode(text, key);
    }
    const willRetry = attempt <= maxRetries;
    host.conflict(id, attempt, willRetry);
    if (!willRetry) {
      throw new ConflictError(
        `session ${JSON.stringify(id)} was changed by another writer during each of ${attempt} attempts`,
        { context: { id, attempts: attempt } },
      );
    }
    // Full jitter, capped: concurrent updaters spread out instead of colliding in lockstep.
    await sleep(Math.random() * Math.min(100, 2 ** attempt));
  }
}
