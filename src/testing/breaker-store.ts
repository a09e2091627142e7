/** The {@link BreakerStateStore} contract: one shared open/half-open state per breaker name. */
import type { BreakerStateStore } from '../resilience/index.js';
import { prepareSuite } from './api.js';
import { type SharedStoreSuiteOptions, StorePool } from './shared.js';
import { sleep, uniqueName, waitFor } from './util.js';

/**
 * Registers the `BreakerStateStore` contract suite (vitest `describe`/`it`) for one backend:
 * one open per period, exactly one half-open trial in the fleet, only the trial's owner settles
 * it, generations that only grow, a vanished trial owner's lease taken over. Every test gets a
 * fresh store from `factory` and a breaker name unique to the run.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store each time it is called.
 * @param options - See {@link SharedStoreSuiteOptions}.
 * @example
 * import { describeBreakerStore } from 'azscale/testing';
 * import { MemoryBreakerStore } from 'azscale/resilience';
 *
 * describeBreakerStore('memory', () => new MemoryBreakerStore());
 */
export function describeBreakerStore(
  name: string,
  factory: () => BreakerStateStore | Promise<BreakerStateStore>,
  options?: SharedStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, it, expect, afterEach } = t;

  describe(`BreakerStateStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    afterEach(() => pool.closeAll());

    it(
      'starts closed, opens once, and a second open keeps the first period',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        expect((await store.read(b)).state).toBe('closed');
        const v1 = await store.open(b, 5000);
        expect(v1.state).toBe('open');
        expect(v1.remainingMs).toBeGreaterThan(3000);
        expect(v1.remainingMs).toBeLessThanOrEqual(5000);
        const v2 = await store.open(b, 60_000);
        expect(v2.generation).toBe(v1.generation);
        expect(v2.remainingMs).toBeLessThanOrEqual(5000);
        expect((await store.read(b)).state).toBe('open');
      },
      timeout,
    );

    it(
      'grants no trial before the open period ends, then exactly one to concurrent claimants',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        await store.open(b, 1500);
        // Taken after the reply, so it is later than the opening on the store's clock.
        const opened = performance.now();
        expect((await store.tryTrial(b, 'early', 5000)).granted).toBe(false);
        await sleep(Math.max(0, opened + 1600 - performance.now()));
        const results = await Promise.all(
          ['a', 'b', 'c', 'd', 'e'].map((o) => store.tryTrial(b, o, 5000)),
        );
        expect(results.filter((r) => r.granted)).toHaveLength(1);
        expect((await store.read(b)).state).toBe('half-open');
      },
      timeout,
    );

    it(
      'a successful trial closes for everyone; only the owner can settle',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        await store.open(b, 1);
        await waitFor(async () => (await store.tryTrial(b, 'owner', 5000)).granted, 'a trial');
        expect((await store.settleTrial(b, 'intruder', true, 1000)).state).toBe('half-open');
        const v = await store.settleTrial(b, 'owner', true, 1000);
        expect(v.state).toBe('closed');
        expect((await store.read(b)).state).toBe('closed');
      },
      timeout,
    );

    it(
      'a failed trial opens again for a fresh period with a newer generation',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        await store.open(b, 1);
        await sleep(10);
        const t1 = await store.tryTrial(b, 'owner', 5000);
        expect(t1.granted).toBe(true);
        const v = await store.settleTrial(b, 'owner', false, 3000);
        expect(v.state).toBe('open');
        expect(v.remainingMs).toBeGreaterThan(1500);
        expect(v.generation).toBeGreaterThan(t1.view.generation);
      },
      timeout,
    );

    it(
      'a repeated claim by the trial owner (a resend) is granted again, nobody else is',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        await store.open(b, 1);
        await sleep(10);
        const first = await store.tryTrial(b, 'owner', 5000);
        expect(first.granted).toBe(true);
        const again = await store.tryTrial(b, 'owner', 5000);
        expect(again.granted).toBe(true);
        expect(again.view.generation).toBe(first.view.generation);
        expect((await store.tryTrial(b, 'other', 5000)).granted).toBe(false);
      },
      timeout,
    );

    it(
      'generations keep growing, across a reset too; reset closes',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        const g0 = (await store.read(b)).generation;
        const g1 = (await store.open(b, 60_000)).generation;
        expect(g1).toBeGreaterThan(g0);
        await store.reset(b);
        const r = await store.read(b);
        expect(r.state).toBe('closed');
        expect(r.generation).toBeGreaterThan(g1);
        expect((await store.open(b, 1000)).generation).toBeGreaterThan(r.generation);
      },
      timeout,
    );

    it(
      'a trial whose owner vanished is taken over after its lease',
      async () => {
        const store = await pool.make();
        const b = uniqueName('breaker');
        await store.open(b, 1);
        await sleep(10);
        expect((await store.tryTrial(b, 'dead', 300)).granted).toBe(true);
        expect((await store.tryTrial(b, 'next', 300)).granted).toBe(false);
        await waitFor(async () => (await store.tryTrial(b, 'next', 300)).granted, 'a takeover');
      },
      timeout,
    );

    it(
      'breaker names are separate, prototype names included',
      async () => {
        const store = await pool.make();
        const p = uniqueName('breaker');
        await store.open(`${p}a`, 60_000);
        expect((await store.read(`${p}b`)).state).toBe('closed');
        for (const n of ['__proto__', 'constructor']) {
          expect((await store.read(`${p}${n}`)).state).toBe('closed');
          expect((await store.open(`${p}${n}`, 60_000)).state).toBe('open');
        }
        expect((await store.read(`${p}toString`)).state).toBe('closed');
      },
      timeout,
    );

    if (options?.shared) {
      it(
        'a second store from the factory sees the open state and competes for the one trial',
        async () => {
          const a = await pool.make();
          const c = await pool.make();
          const b = uniqueName('breaker');
          await a.open(b, 1);
          expect((await c.read(b)).state).not.toBe('closed');
          await sleep(10);
          const [x, y] = await Promise.all([
            a.tryTrial(b, 'proc-a', 5000),
            c.tryTrial(b, 'proc-c', 5000),
          ]);
          expect([x.granted, y.granted].filter(Boolean)).toHaveLength(1);
          const winner = x.granted ? a : c;
          await winner.settleTrial(b, x.granted ? 'proc-a' : 'proc-c', true, 1000);
          expect((await (x.granted ? c : a).read(b)).state).toBe('closed');
        },
        timeout,
      );
    }
  });
}
