import { afterEach, describe, expect, it } from 'vitest';
import type { SpendStore } from '../../src/scaling/index.js';

/** Hour indexes far apart from any real clock, so parallel suites never collide. */
const H = 500_000;

/**
 * The behaviour every {@link SpendStore} must show. `make` returns a fresh store whose data no
 * other test sees (a unique prefix for Redis).
 */
export function spendStoreContract(name: string, make: () => Promise<SpendStore> | SpendStore) {
  describe(`SpendStore contract: ${name}`, () => {
    const open: SpendStore[] = [];
    const store = async () => {
      const s = await make();
      open.push(s);
      return s;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('an untouched hour is empty', async () => {
      const s = await store();
      expect(await s.total(H)).toBe(0);
      expect(await s.categories(H)).toEqual({});
    });

    it('add returns the running total of the hour', async () => {
      const s = await store();
      expect(await s.add(H, 1.5, undefined, 3600)).toBeCloseTo(1.5, 10);
      expect(await s.add(H, 2.25, undefined, 3600)).toBeCloseTo(3.75, 10);
      expect(await s.total(H)).toBeCloseTo(3.75, 10);
    });

    it('hours are separate buckets', async () => {
      const s = await store();
      await s.add(H, 10, undefined, 3600);
      await s.add(H + 1, 1, undefined, 3600);
      expect(await s.total(H)).toBeCloseTo(10, 10);
      expect(await s.total(H + 1)).toBeCloseTo(1, 10);
      expect(await s.total(H + 2)).toBe(0);
    });

    it('keeps per-category amounts next to the total', async () => {
      const s = await store();
      await s.add(H, 1, 'llm', 3600);
      await s.add(H, 0.5, 'llm', 3600);
      await s.add(H, 2, 'instances', 3600);
      await s.add(H, 4, undefined, 3600);
      expect(await s.total(H)).toBeCloseTo(7.5, 10);
      const c = await s.categories(H);
      expect(Object.keys(c).sort()).toEqual(['instances', 'llm']);
      expect(c.llm).toBeCloseTo(1.5, 10);
      expect(c.instances).toBeCloseTo(2, 10);
    });

    it('sums fractions of a cent and decimal amounts without drift that matters', async () => {
      const s = await store();
      await s.add(H, 0.1, undefined, 3600);
      await s.add(H, 0.2, undefined, 3600);
      expect(await s.total(H)).toBeCloseTo(0.3, 12);
      for (let i = 0; i < 20; i++) await s.add(H + 3, 1.5e-7, 'llm', 3600);
      expect(await s.total(H + 3)).toBeCloseTo(3e-6, 12);
    });

    it('concurrent adds are all counted', async () => {
      const s = await store();
      await Promise.all(Array.from({ length: 200 }, () => s.add(H, 0.5, 'x', 3600)));
      expect(await s.total(H)).toBe(100);
      expect((await s.categories(H)).x).toBe(100);
    });

    it('close is idempotent', async () => {
      const s = await make();
      await s.add(H, 1, undefined, 3600);
      await s.close();
      await s.close();
    });
  });
}
