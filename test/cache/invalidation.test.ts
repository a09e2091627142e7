/**
 * Two OS processes share a Redis, each with an in-process tier (L1). A write on one removes the
 * key from the other's L1 through pub/sub; the L1 really serves reads (a write that bypasses the
 * cache is not seen until then); and a Redis lock makes one loader run per cluster.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { type CacheChild, startCacheChild } from './child.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(fn: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await fn()) return true;
    await sleep(20);
  }
  return fn();
}

describe.each(['redis', 'cluster'] as const)('L1 invalidation across processes (%s)', (mode) => {
  const s = servers();
  const prefix = uniquePrefix('inv');
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('a set/delete in one process drops the key from the other process L1', async () => {
    const redis = mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
    const child: CacheChild = await startCacheChild([mode, prefix]);
    cleanups.push(() => child.stop());
    const here = new DistributedCache({ redis, prefix, local: { ttl: 30 } });
    cleanups.push(() => here.close());
    await here.ready();
    const raw = mode === 'cluster' ? new Cluster(s.clusterNodes) : new Redis(s.redisUrl);
    cleanups.push(async () => raw.disconnect());

    for (const key of ['a', 'b{x}', 'c:long:key']) {
      await here.set(key, 'v1');
      // A read that raced with an invalidation message does not fill L1 (on a Cluster the
      // message may come a little after the write): let it arrive, then read.
      await sleep(100);
      expect(await child.call('get', { key })).toBe('v1');
      // The child answers from its L1: a write that bypasses the cache is not seen.
      await raw.set(prefix + key, 'bypass');
      expect(await child.call('get', { key })).toBe('v1');
      // A write through the cache is.
      await here.set(key, 'v2');
      expect(await eventually(async () => (await child.call('get', { key })) === 'v2')).toBe(true);
      await here.delete(key);
      expect(await eventually(async () => (await child.call('get', { key })) === null)).toBe(true);
    }

    // The other direction, and a batch write.
    expect(await here.get('b{x}')).toBeNull();
    await child.call('set', { key: 'from-child', value: 'c1' });
    expect(await here.get('from-child')).toBe('c1');
    await child.call('set', { key: 'from-child', value: 'c2' });
    expect(await eventually(async () => (await here.get('from-child')) === 'c2')).toBe(true);
    expect(await child.call('get', { key: 'm1' })).toBeNull();
    await here.setJSON('m1', 1);
    await here.setBatch([
      ['m1', 'x'],
      ['m2', 'y'],
    ]);
    expect(await eventually(async () => (await child.call('get', { key: 'm1' })) === 'x')).toBe(
      true,
    );
  });
});

describe('Redis lock: one loader per cluster', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('concurrent misses in two processes run the loader once with lock, twice without', async () => {
    const s = servers();
    const prefix = uniquePrefix('lock');
    const child = await startCacheChild(['redis', prefix, 'lock']);
    cleanups.push(() => child.stop());
    const mk = (lock: boolean) =>
      new DistributedCache({ redis: s.redisUrl, prefix, lock, backendTimeout: 2 });
    const locked = mk(true);
    const unlocked = mk(false);
    cleanups.push(
      () => locked.close(),
      () => unlocked.close(),
    );
    let here = 0;
    const loader = async () => {
      here++;
      await sleep(300);
      return `from-parent`;
    };
    const [a, b] = await Promise.all([
      child.call('load', { key: 'L', ms: 300 }),
      sleep(30).then(() => locked.getOrSet('L', loader)),
    ]);
    expect(a).toBe(b);
    expect(here + Number(await child.call('loads'))).toBe(1);

    // Control: without a lock on this side both processes load.
    here = 0;
    const before = Number(await child.call('loads'));
    await Promise.all([
      child.call('load', { key: 'U', ms: 300 }),
      sleep(30).then(() => unlocked.getOrSet('U', loader)),
    ]);
    expect(here + Number(await child.call('loads')) - before).toBe(2);

    // A per-call lock (4th argument after a TTL) works like the cache-wide one.
    here = 0;
    const before2 = Number(await child.call('loads'));
    await Promise.all([
      child.call('load', { key: 'M', ms: 300 }),
      sleep(30).then(() => unlocked.getOrSet('M', loader, 60, { lock: true })),
    ]);
    expect(here + Number(await child.call('loads')) - before2).toBe(1);
  });
});

describe.each(['redis', 'cluster'] as const)(
  'L1 invalidation between instances in one process (%s)',
  (mode) => {
    it('after await a.set(), b.get() sees the new value', async () => {
      const s = servers();
      const prefix = uniquePrefix('inv1');
      const redis = mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
      const a = new DistributedCache({ redis, prefix, local: { ttl: 30 } });
      const b = new DistributedCache({ redis, prefix, local: { ttl: 30 } });
      try {
        await Promise.all([a.ready(), b.ready()]);
        let stale = 0;
        for (let i = 0; i < 30; i++) {
          await a.set('k', `v${i}`);
          if ((await b.get('k')) !== `v${i}`) stale++;
          await b.set('k', `w${i}`);
          if ((await a.get('k')) !== `w${i}`) stale++;
        }
        expect(stale).toBe(0);
        await a.delete('k');
        expect(await b.get('k')).toBeNull();
      } finally {
        await a.close();
        await b.close();
      }
    });
  },
);
