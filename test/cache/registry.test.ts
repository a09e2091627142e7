/**
 * The cache's process-wide state is one visible object: `cacheRegistry` holds the default cache
 * of `cached` and the sibling groups through which caches of one process on one Redis drop each
 * other's L1 entries at once. A registry of your own isolates caches; closing it closes the
 * default it made. Memory runs through the CacheStore interface like Redis.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CacheRegistry,
  DistributedCache,
  MemoryCacheStore,
  cacheRegistry,
  cached,
  getDefaultCache,
  isDistributedCache,
  setDefaultCache,
} from '../../src/cache/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

describe('cacheRegistry', () => {
  afterEach(async () => {
    await cacheRegistry.close();
  });

  it('makes the default cache on first use, replaces it after close, and close() closes it', async () => {
    const a = cacheRegistry.default();
    expect(getDefaultCache()).toBe(a);
    expect(a.backend).toBe('memory');
    await cacheRegistry.close();
    expect(a.isClosed).toBe(true);
    const b = getDefaultCache();
    expect(b).not.toBe(a);
    expect(b.isClosed).toBe(false);
  });

  it('setDefaultCache: cached() without a cache uses it on the next call; a given one is never closed by the registry', async () => {
    const mine = new DistributedCache({ prefix: uniquePrefix('reg') });
    const made = getDefaultCache();
    let calls = 0;
    const f = cached(async (n: number) => {
      calls++;
      return n * 2;
    });
    expect(await f(2)).toBe(4);
    await setDefaultCache(mine);
    // The registry made the old default: replacing it closed it.
    expect(made.isClosed).toBe(true);
    expect(getDefaultCache()).toBe(mine);
    // Not yet in the new default: the function runs again, then hits.
    await f(2);
    await f(2);
    expect(calls).toBe(2);
    await cacheRegistry.close();
    expect(mine.isClosed).toBe(false);
    await mine.close();
  });

  it('refuses what is not a cache', async () => {
    await expect(setDefaultCache({} as never)).rejects.toMatchObject({
      code: 'AZS_VALIDATION',
      option: 'cache',
    });
    expect(() => new DistributedCache({ registry: {} as never })).toThrow(
      expect.objectContaining({ code: 'AZS_VALIDATION', option: 'registry' }),
    );
  });
});

describe('sibling groups', () => {
  it('a write drops the key from L1 of the caches in its registry at once; another registry has its own groups', async () => {
    const { redisUrl } = servers();
    const prefix = uniquePrefix('sib');
    const opts = { redis: redisUrl, prefix, local: { ttl: 60 } };
    const own = new CacheRegistry(() => new DistributedCache());
    const before = cacheRegistry.groupCount;
    const a = new DistributedCache(opts);
    const b = new DistributedCache(opts);
    const c = new DistributedCache({ ...opts, registry: own });
    try {
      expect(cacheRegistry.groupCount).toBe(before + 1);
      expect(own.groupCount).toBe(1);
      await a.set('k', 'v1');
      expect(await b.get('k')).toBe('v1');
      await a.set('k', 'v2');
      // No wait for pub/sub: the sibling group dropped b's copy during the write.
      expect(await b.get('k')).toBe('v2');
      await Promise.all([a.ready(), b.ready(), c.ready()]);
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
    expect(cacheRegistry.groupCount).toBe(before);
    expect(own.groupCount).toBe(0);
  });

  it('a closed cache leaves its group; the group goes with its last member', async () => {
    const { redisUrl } = servers();
    const own = new CacheRegistry(() => new DistributedCache());
    const opts = { redis: redisUrl, prefix: uniquePrefix('sib'), local: true, registry: own };
    const a = new DistributedCache(opts);
    const b = new DistributedCache(opts);
    expect(own.groupCount).toBe(1);
    await a.close();
    expect(own.groupCount).toBe(1);
    await b.close();
    expect(own.groupCount).toBe(0);
  });
});

describe('memory is a store', () => {
  it('a MemoryCacheStore passed as store is the single tier, and the cache leaves it open', async () => {
    const store = new MemoryCacheStore({ max: 10 });
    const cache = new DistributedCache({ store, local: true, lock: true });
    expect(cache.backend).toBe('memory');
    expect(cache._hot).toBe(store.entries);
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 20));
      return 'x';
    };
    // Single-flight is the whole cluster in one process: the lock adds no key to the store.
    const got = await Promise.all(Array.from({ length: 5 }, () => cache.getOrSet('k', load)));
    expect(got).toEqual(['x', 'x', 'x', 'x', 'x']);
    expect(loads).toBe(1);
    expect([...store.entries.keys()]).toEqual(['k']);
    await cache.close();
    // Yours: not closed (not cleared) by the cache.
    expect(await store.get('k')).toBe('x');
  });

  it('isDistributedCache needs no underscore fields', () => {
    expect(isDistributedCache(new DistributedCache())).toBe(true);
    expect(isDistributedCache({ getOrSetJSON() {}, _cachedMiss() {}, _decodeEntry() {} })).toBe(
      false,
    );
  });
});
