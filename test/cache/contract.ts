/**
 * The DistributedCache contract, run by contract.test.ts for every configuration (memory,
 * Redis standalone, Cluster, with and without the local tier).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { DistributedCache } from '../../src/cache/index.js';
import { sleep } from '../../src/core/timers.js';
import { manyKeys } from '../../src/testing/util.js';
import { uniquePrefix } from '../harness/env.js';

/**
 * Runs the facade's own contract for one configuration. The store underneath is proved by
 * `describeCacheStore` (azscale/testing) in store-contract.test.ts; this suite covers what the
 * facade adds on top of a configured backend (the local tier included).
 */
export function cacheContract(
  name: string,
  make: (prefix: string) => DistributedCache,
  opts: { shared: boolean },
): void {
  describe(`DistributedCache contract: ${name}`, () => {
    const caches: DistributedCache[] = [];
    const mk = () => {
      const c = make(uniquePrefix('cache'));
      caches.push(c);
      return c;
    };
    afterAll(async () => {
      await Promise.all(caches.map((c) => c.close()));
    });

    it('get/set/delete strings; default and explicit ttl', async () => {
      const c = mk();
      expect(await c.get('a')).toBeNull();
      await c.set('a', '1');
      expect(await c.get('a')).toBe('1');
      await c.set('a', '2', 0.2);
      expect(await c.get('a')).toBe('2');
      await sleep(450);
      expect(await c.get('a')).toBeNull();
      await c.set('b', 'x');
      expect(await c.delete('b')).toBe(true);
      expect(await c.get('b')).toBeNull();
    });

    it('getBatch/setBatch over keys in many slots, order and misses preserved', async () => {
      const c = mk();
      const keys = manyKeys('', 500);
      await c.setBatch(
        keys.filter((_, i) => i % 2 === 0).map((k) => [k, `v${k}`] as [string, string]),
      );
      const got = await c.getBatch(keys);
      for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 2 === 0 ? `v${k}` : null);
      await c.setBatch({ x: '1', y: '2' });
      await c.setBatch(new Map([['z', '3']]), 60);
      await c.setBatch([{ key: 'w', value: '4' }]);
      expect(await c.getBatch(['x', 'y', 'z', 'w', 'nope', 'x'])).toEqual([
        '1',
        '2',
        '3',
        '4',
        null,
        '1',
      ]);
      expect(await c.getBatch([])).toEqual([]);
    });

    it('getJSON/setJSON round-trip typed values', async () => {
      const c = mk();
      await c.setJSON('j', { a: [1, 'two', null], b: { c: true } });
      expect(await c.getJSON<{ a: unknown[] }>('j')).toEqual({
        a: [1, 'two', null],
        b: { c: true },
      });
      expect(await c.getJSON('missing')).toBeNull();
    });

    it('getOrSet runs the loader once for concurrent misses and then hits', async () => {
      const c = mk();
      let calls = 0;
      const loader = async () => {
        calls++;
        await sleep(50);
        return `v${calls}`;
      };
      const got = await Promise.all(Array.from({ length: 20 }, () => c.getOrSet('k', loader, 60)));
      expect(new Set(got)).toEqual(new Set(['v1']));
      expect(calls).toBe(1);
      expect(await c.getOrSet('k', loader)).toBe('v1');
      expect(calls).toBe(1);
      expect(await c.get('k')).toBe('v1');
      const obj = await c.getOrSetJSON('j', async () => ({ n: 1 }), { ttl: 60 });
      expect(obj).toEqual({ n: 1 });
      expect(await c.getOrSetJSON('j', async () => ({ n: 2 }))).toEqual({ n: 1 });
    });

    it('a failing loader rejects every waiter and caches nothing', async () => {
      const c = mk();
      let calls = 0;
      const boom = async (): Promise<string> => {
        calls++;
        await sleep(20);
        throw new Error('loader failed');
      };
      const rs = await Promise.allSettled([c.getOrSet('f', boom), c.getOrSet('f', boom)]);
      expect(rs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(calls).toBe(1);
      expect(await c.get('f')).toBeNull();
      expect(await c.getOrSet('f', async () => 'ok')).toBe('ok');
    });

    it('the prefix isolates two caches on one backend', async () => {
      if (!opts.shared) return;
      const a = mk();
      const b = mk();
      await a.set('same', 'A');
      expect(await b.get('same')).toBeNull();
    });
  });
}
