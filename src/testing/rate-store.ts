/** The {@link RateStore} contract: request and token budgets plus a pause, per key. */
import type { RateCost, RateStore } from '../resilience/index.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { prepareSuite } from './api.js';
import { type SharedStoreSuiteOptions, StorePool } from './shared.js';
import { sleep, uniqueName } from './util.js';

const MAX_PAUSE_MS = MAX_DURATION_SECONDS * 1000;

const perMinute = (rpm: number, tpm = 0, tokens = 0): RateCost => ({
  requestIntervalMs: 60_000 / rpm,
  tokenIntervalMs: tpm ? 60_000 / tpm : 0,
  tokens,
  periodMs: 60_000,
});

/**
 * Registers the `RateStore` contract suite (vitest `describe`/`it`) for one backend (GCRA mode):
 * a period's budget as a burst then a steady refill, token budgets spent all-or-nothing, pauses
 * that never shorten and are capped at 10 years. Every test gets a fresh store from `factory`
 * and a key unique to the run.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store each time it is called.
 * @param options - See {@link SharedStoreSuiteOptions}.
 * @example
 * import { describeRateStore } from 'azscale/testing';
 * import { MemoryRateStore } from 'azscale/resilience';
 *
 * describeRateStore('memory', () => new MemoryRateStore());
 */
export function describeRateStore(
  name: string,
  factory: () => RateStore | Promise<RateStore>,
  options?: SharedStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, it, expect, afterEach } = t;

  describe(`RateStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    afterEach(() => pool.closeAll());

    it(
      'allows a burst of the per-minute budget, then refuses with a retry time',
      async () => {
        const store = await pool.make();
        const key = uniqueName('rate');
        const cost = perMinute(6); // one request per 10 s, burst 6
        for (let i = 0; i < 6; i++) expect((await store.take(key, cost)).allowed).toBe(true);
        const r = await store.take(key, cost);
        expect(r.allowed).toBe(false);
        expect(r.retryAfterMs).toBeGreaterThan(8000);
        expect(r.retryAfterMs).toBeLessThanOrEqual(10_000);
      },
      timeout,
    );

    it(
      'charges tokens and refuses when the token budget is short, spending nothing',
      async () => {
        const store = await pool.make();
        const key = uniqueName('rate');
        const big = perMinute(1000, 10_000, 6000);
        expect((await store.take(key, big)).allowed).toBe(true);
        const r = await store.take(key, big);
        expect(r.allowed).toBe(false);
        // 2000 tokens over budget at 10k/min: 12 s.
        expect(r.retryAfterMs).toBeGreaterThan(10_000);
        expect(r.retryAfterMs).toBeLessThanOrEqual(12_000);
        // The refused call spent nothing: 4000 tokens still fit.
        expect((await store.take(key, perMinute(1000, 10_000, 4000))).allowed).toBe(true);
      },
      timeout,
    );

    it(
      'refills at the steady rate',
      async () => {
        const store = await pool.make();
        const key = uniqueName('rate');
        const cost = perMinute(120); // 500 ms per request, burst 120
        let allowed = 0;
        for (let i = 0; i < 200 && (await store.take(key, cost)).allowed; i++) allowed++;
        // The loop may take long enough on a slow machine for a few to refill.
        expect(allowed).toBeGreaterThanOrEqual(120);
        expect(allowed).toBeLessThan(130);
        const refused = await store.take(key, cost);
        expect(refused.allowed).toBe(false);
        expect(refused.retryAfterMs).toBeLessThanOrEqual(500);
        await sleep(refused.retryAfterMs + 30);
        expect((await store.take(key, cost)).allowed).toBe(true);
      },
      timeout,
    );

    it(
      'concurrent takes never spend more than the burst',
      async () => {
        const store = await pool.make();
        const key = uniqueName('rate');
        const cost = perMinute(10); // burst 10, one more every 6 s
        const rs = await Promise.all(Array.from({ length: 30 }, () => store.take(key, cost)));
        expect(rs.filter((r) => r.allowed)).toHaveLength(10);
      },
      timeout,
    );

    it(
      'pause refuses for everyone until it ends, and never shortens',
      async () => {
        const store = await pool.make();
        const key = uniqueName('rate');
        await store.pause(key, 600);
        // Taken after the reply, so it is later than the pause's start on the store's clock.
        const paused = performance.now();
        await store.pause(key, 50);
        const r = await store.take(key, perMinute(1000));
        expect(r.allowed).toBe(false);
        expect(r.retryAfterMs).toBeGreaterThan(0);
        await sleep(Math.max(0, paused + 700 - performance.now()));
        expect((await store.take(key, perMinute(1000))).allowed).toBe(true);
      },
      timeout,
    );

    for (const ms of [1e15, 1e20, 1e300, Number.POSITIVE_INFINITY, Number.NaN, -5]) {
      it(
        `a pause of ${ms} ms is capped at 10 years (or ignored when not a duration)`,
        async () => {
          const store = await pool.make();
          const key = uniqueName('rate');
          await store.pause(key, ms);
          const r = await store.take(key, perMinute(1000));
          expect(Number.isFinite(r.retryAfterMs)).toBe(true);
          expect(r.retryAfterMs).toBeGreaterThanOrEqual(0);
          expect(r.retryAfterMs).toBeLessThanOrEqual(MAX_PAUSE_MS);
          if (ms > 1e15) expect(r.allowed).toBe(false);
        },
        timeout,
      );
    }

    if (options?.shared) {
      it(
        'two stores from the factory spend one budget, and see one pause',
        async () => {
          const a = await pool.make();
          const b = await pool.make();
          const key = uniqueName('rate');
          const cost = perMinute(6);
          const rs = await Promise.all(
            Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).take(key, cost)),
          );
          expect(rs.filter((r) => r.allowed)).toHaveLength(6);
          const other = uniqueName('rate');
          await a.pause(other, 60_000);
          expect((await b.take(other, perMinute(1000))).allowed).toBe(false);
        },
        timeout,
      );
    }
  });
}
