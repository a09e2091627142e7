import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { isBackendUnavailableError } from '../../src/core/errors.js';
import { MemorySpendStore, RedisSpendStore } from '../../src/scaling/index.js';
import { servers, startRedisServer, uniquePrefix } from '../harness/env.js';
import { describeSpendStore } from '../../src/testing/index.js';

const s = servers();

// One prefix per backend, so two stores from one factory share their buckets (as two
// processes would); the suite's hour indexes keep its tests apart.
const prefixes = {
  redis: uniquePrefix('cost'),
  auth: uniquePrefix('cost'),
  cluster: uniquePrefix('cost'),
};
describeSpendStore('memory', () => new MemorySpendStore());
describeSpendStore(
  'redis standalone',
  () => new RedisSpendStore(s.redisUrl, { prefix: prefixes.redis }),
  { shared: true },
);
describeSpendStore(
  'redis requirepass',
  () => new RedisSpendStore(s.redisAuthUrl, { prefix: prefixes.auth }),
  { shared: true },
);
describeSpendStore(
  'redis cluster',
  () => new RedisSpendStore({ nodes: s.clusterNodes }, { prefix: prefixes.cluster }),
  { shared: true },
);

describe('MemorySpendStore expiry', () => {
  it('drops a bucket ttl seconds after its last write', async () => {
    let now = 0;
    const m = new MemorySpendStore(() => now);
    await m.add(1, 5, 'a', 3600);
    now = 3599_000;
    expect(await m.total(1)).toBe(5);
    now = 3600_000;
    expect(await m.total(1)).toBe(0);
    expect(await m.categories(1)).toEqual({});
  });
});

describe('RedisSpendStore keys', () => {
  const raw = new Redis(s.redisUrl);
  afterAll(() => raw.quit());

  it('one INCRBYFLOAT key per hour with an expiry, categories in a hash with the same tag', async () => {
    const prefix = uniquePrefix('cost');
    const store = new RedisSpendStore(s.redisUrl, { prefix, name: 'team-a' });
    const hour = Math.floor(Date.UTC(2026, 10, 28, 15, 30) / 3_600_000);
    await store.add(hour, 2.5, 'llm', 7200);
    const key = store.keyFor(hour);
    expect(key).toBe(`${prefix}{team-a:2026-11-28T15}`);
    expect(await raw.get(key)).toBe('2.5');
    const ttl = await raw.ttl(key);
    expect(ttl).toBeGreaterThan(7000);
    expect(ttl).toBeLessThanOrEqual(7200);
    expect(await raw.hget(`${key}:categories`, 'llm')).toBe('2.5');
    expect(await raw.ttl(`${key}:categories`)).toBeGreaterThan(7000);
    await store.close();
  });

  it('hours past year 9999 keep one key each (the ISO year grows to six digits)', async () => {
    const prefix = uniquePrefix('cost');
    const store = new RedisSpendStore(s.redisUrl, { prefix, name: 'far' });
    const h = Math.floor(Date.UTC(10000, 0, 1, 0) / 3_600_000);
    expect(store.keyFor(h)).toBe(`${prefix}{far:+010000-01-01T00}`);
    await store.add(h, 1, undefined, 3600);
    await store.add(h + 1, 2, undefined, 3600);
    expect(store.keyFor(h + 1)).not.toBe(store.keyFor(h));
    expect(await store.total(h)).toBe(1);
    expect(await store.total(h + 1)).toBe(2);
    await store.close();
  });

  it('survives SCRIPT FLUSH (NOSCRIPT falls back to EVAL), standalone and cluster', async () => {
    const cluster = new Cluster(s.clusterNodes);
    try {
      for (const target of [s.redisUrl, { nodes: s.clusterNodes }] as const) {
        const store = new RedisSpendStore(target, { prefix: uniquePrefix('cost') });
        await store.add(3, 1, 'a', 3600);
        await raw.script('FLUSH');
        await Promise.all(cluster.nodes('master').map((n) => n.script('FLUSH')));
        expect(await store.add(3, 2, 'a', 3600)).toBe(3);
        expect(await store.add(3, 0.5, undefined, 3600)).toBe(3.5);
        expect(await store.categories(3)).toEqual({ a: 3 });
        await store.close();
      }
    } finally {
      await cluster.quit();
    }
  });

  it('validates prefix and name', () => {
    expect(() => new RedisSpendStore(s.redisUrl, { name: '' })).toThrow(/name/);
    expect(() => new RedisSpendStore(s.redisUrl, { prefix: 'a\nb' })).toThrow(/prefix/);
  });

  it('a caller-owned client is left open by close()', async () => {
    const client = new Redis(s.redisUrl);
    const store = new RedisSpendStore(client, { prefix: uniquePrefix('cost') });
    await store.add(1, 1, undefined, 3600);
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });

  it('works with a caller-owned Cluster client', async () => {
    const cluster = new Cluster(s.clusterNodes);
    const store = new RedisSpendStore(cluster, { prefix: uniquePrefix('cost') });
    await store.add(7, 1.25, 'llm', 3600);
    expect(await store.total(7)).toBe(1.25);
    await store.close();
    expect(cluster.status).toBe('ready');
    await cluster.quit();
  });

  it('a dead server is a BackendUnavailableError without the password', async () => {
    const own = await startRedisServer({ password: 'hunter2-secret' });
    const store = new RedisSpendStore(own.url, {
      prefix: uniquePrefix('cost'),
      connection: { connectTimeout: 1, commandTimeout: 1 },
    });
    await store.add(1, 1, undefined, 3600);
    await own.kill();
    const err = await store.add(1, 1, undefined, 3600).catch((e: unknown) => e);
    expect(isBackendUnavailableError(err)).toBe(true);
    expect(String((err as Error).message)).not.toContain('hunter2-secret');
    const err2 = await store.total(1).catch((e: unknown) => e);
    expect(isBackendUnavailableError(err2)).toBe(true);
    expect(String((err2 as Error).message)).not.toContain('hunter2-secret');
    await store.close();
  });
});
