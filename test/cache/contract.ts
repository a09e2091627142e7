/**
 * The CacheStore / DistributedCache contract: every backend (memory, Redis standalone, Redis
 * Cluster) runs this same suite.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheStore, DistributedCache } from '../../src/cache/index.js';
import { uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keys spread over many hash slots (and, on a Cluster, over every node). */
export function manyKeys(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}k${i}:${(i * 7919) % 10007}`);
}

export function storeContract(name: string, make: () => Promise<CacheStore> | CacheStore): void {
  describe(`CacheStore contract: ${name}`, () => {
    let store: CacheStore;
    let p: string;
    beforeAll(async () => {
      store = await make();
      await store.ping();
    });
    afterAll(async () => {
      await store.close();
    });
    const fresh = () => (p = uniquePrefix('cstore'));

    it('get of a missing key is null; set then get returns the value', async () => {
      fresh();
      expect(await store.get(`${p}a`)).toBeNull();
      await store.set(`${p}a`, 'héllo ✓', 60);
      expect(await store.get(`${p}a`)).toBe('héllo ✓');
      await store.set(`${p}a`, '', 60);
      expect(await store.get(`${p}a`)).toBe('');
    });

    it('entries expire after their ttl (seconds, fractions allowed)', async () => {
      fresh();
      await store.set(`${p}ttl`, 'x', 0.15);
      expect(await store.get(`${p}ttl`)).toBe('x');
      await sleep(400);
      expect(await store.get(`${p}ttl`)).toBeNull();
    });

    it('delete reports whether the key existed', async () => {
      fresh();
      await store.set(`${p}d`, 'v', 60);
      expect(await store.delete(`${p}d`)).toBe(true);
      expect(await store.delete(`${p}d`)).toBe(false);
      expect(await store.get(`${p}d`)).toBeNull();
    });

    it('getMany keeps order and nulls over keys in many slots', async () => {
      fresh();
      const keys = manyKeys(p, 300);
      const entries = keys.filter((_, i) => i % 3 !== 0).map((k) => [k, `v:${k}`] as const);
      await store.setMany(entries, 60);
      const got = await store.getMany(keys);
      expect(got).toHaveLength(keys.length);
      for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 3 === 0 ? null : `v:${k}`);
      expect(await store.getMany([])).toEqual([]);
      // Duplicates and hash-tagged keys (one slot, several keys) in one batch.
      const tagged = [`{${p}t}a`, `{${p}t}b`, `{${p}t}a`, `${p}k1:7919`];
      await store.setMany(
        [
          [`{${p}t}a`, 'A'],
          [`{${p}t}b`, 'B'],
        ],
        60,
      );
      expect(await store.getMany(tagged)).toEqual(['A', 'B', 'A', got[1]]);
    });

    it('concurrent single gets each get their own key (reads issued together may be batched)', async () => {
      fresh();
      const keys = manyKeys(p, 120);
      await store.setMany(
        keys.filter((_, i) => i % 4 !== 0).map((k) => [k, `v:${k}`] as const),
        60,
      );
      const got = await Promise.all(keys.map((k) => store.get(k)));
      for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 4 === 0 ? null : `v:${k}`);
    });

    it('setIfAbsent / deleteIfEquals behave as a lock', async () => {
      fresh();
      expect(await store.setIfAbsent(`${p}lock`, 'me', 5)).toBe(true);
      expect(await store.setIfAbsent(`${p}lock`, 'you', 5)).toBe(false);
      expect(await store.deleteIfEquals(`${p}lock`, 'you')).toBe(false);
      expect(await store.get(`${p}lock`)).toBe('me');
      expect(await store.deleteIfEquals(`${p}lock`, 'me')).toBe(true);
      expect(await store.setIfAbsent(`${p}lock`, 'you', 5)).toBe(true);
    });
  });
}

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
