/** The {@link SpendStore} contract: hourly spend buckets with per-category amounts. */
import type { SpendStore } from '../scaling/index.js';
import { prepareSuite } from './api.js';
import { type SharedStoreSuiteOptions, StorePool } from './shared.js';

/**
 * Hour indexes far from any real clock (a real one is about 500,000 in 2026) and apart per run,
 * so parallel runs on one shared backend never meet; all stay within four-digit years (below
 * hour 70,000,000), as a store may name the hour by its date.
 */
function hourBase(): number {
  return 1_000_000 + Math.floor(Math.random() * 6_000_000) * 10;
}

/**
 * Registers the `SpendStore` contract suite (vitest `describe`/`it`) for one backend: running
 * totals per hour, separate hours, per-category amounts, concurrent adds all counted. Every test
 * gets a fresh store from `factory` and hour indexes of its own.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store each time it is called.
 * @param options - See {@link SharedStoreSuiteOptions}.
 * @example
 * import { describeSpendStore } from 'azscale/testing';
 * import { MemorySpendStore } from 'azscale/scaling';
 *
 * describeSpendStore('memory', () => new MemorySpendStore());
 */
export function describeSpendStore(
  name: string,
  factory: () => SpendStore | Promise<SpendStore>,
  options?: SharedStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, it, expect, afterEach } = t;

  describe(`SpendStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    afterEach(() => pool.closeAll());

    it(
      'an untouched hour is empty',
      async () => {
        const s = await pool.make();
        const H = hourBase();
        expect(await s.total(H)).toBe(0);
        expect(await s.categories(H)).toEqual({});
      },
      timeout,
    );

    it(
      'add returns the running total of the hour; hours are separate buckets',
      async () => {
        const s = await pool.make();
        const H = hourBase();
        expect(await s.add(H, 1.5, undefined, 3600)).toBeCloseTo(1.5, 10);
        expect(await s.add(H, 2.25, undefined, 3600)).toBeCloseTo(3.75, 10);
        expect(await s.total(H)).toBeCloseTo(3.75, 10);
        await s.add(H + 1, 1, undefined, 3600);
        expect(await s.total(H + 1)).toBeCloseTo(1, 10);
        expect(await s.total(H + 2)).toBe(0);
      },
      timeout,
    );

    it(
      'keeps per-category amounts next to the total, prototype names included',
      async () => {
        const s = await pool.make();
        const H = hourBase();
        await s.add(H, 1, 'llm', 3600);
        await s.add(H, 0.5, 'llm', 3600);
        await s.add(H, 2, 'instances', 3600);
        await s.add(H, 4, undefined, 3600);
        await s.add(H, 0.25, '__proto__', 3600);
        await s.add(H, 0.125, 'constructor', 3600);
        expect(await s.total(H)).toBeCloseTo(7.875, 10);
        const c = await s.categories(H);
        expect(Object.keys(c).sort()).toEqual(['__proto__', 'constructor', 'instances', 'llm']);
        expect(c.llm).toBeCloseTo(1.5, 10);
        expect(c.instances).toBeCloseTo(2, 10);
        expect(Object.getOwnPropertyDescriptor(c, '__proto__')?.value).toBeCloseTo(0.25, 10);
        expect(({} as Record<string, unknown>).llm).toBeUndefined();
      },
      timeout,
    );

    it(
      'sums fractions of a cent without drift that matters',
      async () => {
        const s = await pool.make();
        const H = hourBase();
        await s.add(H, 0.1, undefined, 3600);
        await s.add(H, 0.2, undefined, 3600);
        expect(await s.total(H)).toBeCloseTo(0.3, 12);
        for (let i = 0; i < 20; i++) await s.add(H + 3, 1.5e-7, 'llm', 3600);
        expect(await s.total(H + 3)).toBeCloseTo(3e-6, 12);
      },
      timeout,
    );

    it(
      'concurrent adds are all counted',
      async () => {
        const s = await pool.make();
        const H = hourBase();
        await Promise.all(Array.from({ length: 200 }, () => s.add(H, 0.5, 'x', 3600)));
        expect(await s.total(H)).toBe(100);
        expect((await s.categories(H)).x).toBe(100);
      },
      timeout,
    );

    it(
      'close is idempotent',
      async () => {
        const s = await factory();
        await s.add(hourBase(), 1, undefined, 3600);
        await s.close();
        await s.close();
      },
      timeout,
    );

    if (options?.shared) {
      it(
        'two stores from the factory add into one bucket',
        async () => {
          const a = await pool.make();
          const b = await pool.make();
          const H = hourBase();
          await Promise.all(
            Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).add(H, 0.25, 'llm', 3600)),
          );
          expect(await a.total(H)).toBe(10);
          expect((await b.categories(H)).llm).toBe(10);
        },
        timeout,
      );
    }
  });
}
