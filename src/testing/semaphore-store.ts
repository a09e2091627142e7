/** The {@link SemaphoreStore} contract: a fleet-wide counting semaphore of leases. */
import type { SemaphoreStore } from '../resilience/index.js';
import { prepareSuite } from './api.js';
import { type SharedStoreSuiteOptions, StorePool } from './shared.js';
import { sleep, uniqueName } from './util.js';

/**
 * Registers the `SemaphoreStore` contract suite (vitest `describe`/`it`) for one backend: never
 * more weight than the limit (concurrent acquirers included), leases idempotent per id, released
 * once, expired leases reclaimed, renewals, and the fair line between processes. Every test gets
 * a fresh store from `factory` and a semaphore key unique to the run.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store each time it is called.
 * @param options - See {@link SharedStoreSuiteOptions}.
 * @example
 * import { describeSemaphoreStore } from 'azscale/testing';
 * import { MemorySemaphoreStore } from 'azscale/resilience';
 *
 * describeSemaphoreStore('memory', () => new MemorySemaphoreStore());
 */
export function describeSemaphoreStore(
  name: string,
  factory: () => SemaphoreStore | Promise<SemaphoreStore>,
  options?: SharedStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, it, expect, afterEach } = t;

  describe(`SemaphoreStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    afterEach(() => pool.closeAll());

    it(
      'grants up to the limit in weight and refuses beyond it with a retry hint',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        expect((await store.acquire(key, 'a', 2, 3, 10_000)).acquired).toBe(true);
        const b = await store.acquire(key, 'b', 2, 3, 10_000);
        expect(b.acquired).toBe(false);
        expect(b.used).toBe(2);
        expect(b.retryHintMs).toBeGreaterThan(0);
        expect((await store.acquire(key, 'c', 1, 3, 10_000)).acquired).toBe(true);
        expect(await store.used(key)).toBe(3);
      },
      timeout,
    );

    it(
      'acquire is idempotent per lease id (a resent acquire holds one lease)',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        expect((await store.acquire(key, 'a', 1, 1, 10_000)).acquired).toBe(true);
        expect((await store.acquire(key, 'a', 1, 1, 10_000)).acquired).toBe(true);
        expect(await store.used(key)).toBe(1);
      },
      timeout,
    );

    it(
      'release frees the slot once',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        await store.acquire(key, 'a', 1, 1, 10_000);
        expect(await store.release(key, 'a')).toBe(true);
        expect(await store.release(key, 'a')).toBe(false);
        expect((await store.acquire(key, 'b', 1, 1, 10_000)).acquired).toBe(true);
        expect(await store.release(key, 'never-held')).toBe(false);
      },
      timeout,
    );

    it(
      'never grants more than the limit to concurrent acquirers',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.acquire(key, `l${i}`, 1, 5, 10_000)),
        );
        expect(results.filter((r) => r.acquired)).toHaveLength(5);
        expect(await store.used(key)).toBe(5);
      },
      timeout,
    );

    it(
      'gives a freed slot to the process waiting longest, not to whoever asks first',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        const A = { id: 'proc-a', more: false, staleMs: 10_000 };
        const B = { id: 'proc-b', more: false, staleMs: 10_000 };
        expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
        expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(false);
        await store.release(key, 'x');
        // A was not in line: B is ahead of it.
        expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(false);
        expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(true);
        await store.release(key, 'b1');
        expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(true);
      },
      timeout,
    );

    it(
      'a process with more callers goes to the back of the line after each grant',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        const A = { id: 'proc-a', more: true, staleMs: 10_000 };
        const B = { id: 'proc-b', more: true, staleMs: 10_000 };
        expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
        expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(false);
        expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(false);
        await store.release(key, 'x');
        expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(true);
        await store.release(key, 'a1');
        // A went to the back when it was served: B's turn, although A asks first.
        expect((await store.acquire(key, 'a2', 1, 1, 10_000, A)).acquired).toBe(false);
        expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(true);
        await store.release(key, 'b1');
        expect((await store.acquire(key, 'b2', 1, 1, 10_000, B)).acquired).toBe(false);
        expect((await store.acquire(key, 'a2', 1, 1, 10_000, A)).acquired).toBe(true);
      },
      timeout,
    );

    it(
      'drops a waiter that stopped polling, and one that left',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        // `dead` goes stale 2 s after it last polled: room for the round trips before `me` asks
        // on a loaded machine, and then `me` waits just past it.
        const dead = { id: 'dead', more: false, staleMs: 2000 };
        const quit = { id: 'quit', more: false, staleMs: 10_000 };
        expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
        await store.acquire(key, 'd1', 1, 1, 10_000, dead);
        const deadPolled = performance.now();
        await store.acquire(key, 'q1', 1, 1, 10_000, quit);
        await store.release(key, 'x');
        await store.leave(key, 'quit');
        const me = { id: 'me', more: false, staleMs: 100 };
        expect((await store.acquire(key, 'm1', 1, 1, 10_000, me)).acquired).toBe(false);
        await sleep(Math.max(0, deadPolled + 2100 - performance.now()));
        expect((await store.acquire(key, 'm1', 1, 1, 10_000, me)).acquired).toBe(true);
      },
      timeout,
    );

    it(
      'reclaims an expired lease; renew keeps a live one and fails for a lost one',
      async () => {
        const store = await pool.make();
        const key = uniqueName('sem');
        await store.acquire(key, 'dead', 1, 1, 1000);
        const deadAcquired = performance.now();
        await store.acquire(key, 'live', 1, 2, 1000);
        expect((await store.acquire(key, 'x', 1, 2, 10_000)).acquired).toBe(false);
        expect(await store.renew(key, 'live', 10_000)).toBe(true);
        await sleep(Math.max(0, deadAcquired + 1100 - performance.now()));
        // 'dead' ran out; 'live' was renewed.
        expect(await store.used(key)).toBe(1);
        expect((await store.acquire(key, 'x', 1, 2, 10_000)).acquired).toBe(true);
        expect(await store.renew(key, 'dead', 10_000)).toBe(false);
        expect(await store.release(key, 'dead')).toBe(false);
      },
      timeout,
    );

    if (options?.shared) {
      it(
        'two stores from the factory share one limit',
        async () => {
          const a = await pool.make();
          const b = await pool.make();
          const key = uniqueName('sem');
          const results = await Promise.all(
            Array.from({ length: 12 }, (_, i) =>
              (i % 2 ? a : b).acquire(key, `l${i}`, 1, 4, 10_000),
            ),
          );
          expect(results.filter((r) => r.acquired)).toHaveLength(4);
          expect(await a.used(key)).toBe(4);
          expect(await b.used(key)).toBe(4);
        },
        timeout,
      );
    }
  });
}
