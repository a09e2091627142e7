/**
 * The `cached` hit path keeps its own references to in-process entries; they must never outlive
 * the entry: TTL expiry, LRU eviction, delete, overwrite and invalidation from another instance
 * all make the next call see the change.
 */
import { describe, expect, it } from 'vitest';
import { DistributedCache, cached } from '../../src/cache/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cached hit path and entry lifetime', () => {
  it('expires with the TTL and follows LRU eviction (memory)', async () => {
    const cache = new DistributedCache({ local: { max: 3 } });
    let calls = 0;
    const f = cached(
      async (n: number) => {
        calls++;
        return n * 10;
      },
      // 1 s: the five calls below must all land inside it even on a loaded machine.
      { cache, ttl: 1, name: 'f' },
    );
    for (let i = 0; i < 5; i++) expect(await f(1)).toBe(10);
    expect(calls).toBe(1);
    await sleep(1200);
    expect(await f(1)).toBe(10);
    expect(calls).toBe(2);
    // Fill past max: 1 is evicted as least recently used.
    const g = cached(
      async (n: number) => {
        calls++;
        return n;
      },
      { cache, ttl: 60, name: 'g' },
    );
    calls = 0;
    for (const n of [1, 1, 1, 2, 3, 4]) await g(n);
    expect(calls).toBe(4);
    await g(1);
    expect(calls).toBe(5);
    await cache.close();
  });

  it('a hot entry read only through the fast path is not evicted as idle', async () => {
    const cache = new DistributedCache({ local: { max: 50 } });
    let calls = 0;
    const f = cached(
      async (n: number) => {
        calls++;
        return n;
      },
      { cache, ttl: 60, name: 'hot' },
    );
    await f(0);
    // Key 0 is hit constantly while 200 other keys stream through a 50-entry LRU.
    for (let i = 1; i <= 200; i++) {
      for (let j = 0; j < 40; j++) await f(0);
      await f(i);
    }
    expect(calls).toBeLessThanOrEqual(201 + 2);
    await cache.close();
  });

  it.each(['redis', 'cluster'] as const)(
    'delete, overwrite and writes from another instance are seen at once (%s)',
    async (mode) => {
      const s = servers();
      const redis = mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
      const prefix = uniquePrefix('cachedl1');
      // Not a timing test: the 1 s default backendTimeout (connecting included) is shorter than a
      // round trip can take on a loaded machine (ready() failed that way).
      const a = new DistributedCache({ redis, prefix, local: { ttl: 30 }, backendTimeout: 10 });
      const b = new DistributedCache({ redis, prefix, local: { ttl: 30 }, backendTimeout: 10 });
      try {
        await Promise.all([a.ready(), b.ready()]);
        let calls = 0;
        const price = cached(
          async (id: string) => {
            calls++;
            return { id, price: 100 };
          },
          { cache: a, key: (id: string) => `price:${id}` },
        );
        expect(await price('x')).toEqual({ id: 'x', price: 100 });
        for (let i = 0; i < 3; i++) await price('x');
        expect(calls).toBe(1);
        await b.setJSON('price:x', { id: 'x', price: 90 });
        expect(await price('x')).toEqual({ id: 'x', price: 90 });
        await a.setJSON('price:x', { id: 'x', price: 80 });
        expect(await price('x')).toEqual({ id: 'x', price: 80 });
        await b.delete('price:x');
        expect(await price('x')).toEqual({ id: 'x', price: 100 });
        expect(calls).toBe(2);
      } finally {
        await a.close();
        await b.close();
      }
    },
  );
});
