import { describe, expect, it } from 'vitest';
import { resolveRedis } from '../../src/core/connection.js';
import { DistributedCache, MemoryCacheStore, RedisCacheStore } from '../../src/cache/index.js';
import { servers } from '../harness/env.js';
import { cacheContract, storeContract } from './contract.js';

const s = servers();

storeContract('memory', () => new MemoryCacheStore());
storeContract('redis', () => new RedisCacheStore(resolveRedis(s.redisUrl)!));
storeContract('cluster', () => new RedisCacheStore(resolveRedis({ nodes: s.clusterNodes })!));

cacheContract('memory', (prefix) => new DistributedCache({ prefix }), { shared: false });
cacheContract('redis', (prefix) => new DistributedCache({ prefix, redis: s.redisUrl }), {
  shared: true,
});
cacheContract(
  'redis + local',
  (prefix) => new DistributedCache({ prefix, redis: s.redisUrl, local: { max: 1000, ttl: 5 } }),
  { shared: true },
);
cacheContract('cluster', (prefix) => new DistributedCache({ prefix, redis: { nodes: s.clusterNodes } }), {
  shared: true,
});
cacheContract(
  'cluster + local',
  (prefix) => new DistributedCache({ prefix, redis: { nodes: s.clusterNodes }, local: true }),
  { shared: true },
);

describe('Cluster getBatch', () => {
  it('spreads a batch over every master and reads it back in one call', async () => {
    const { Cluster } = await import('ioredis');
    const raw = new Cluster(s.clusterNodes);
    const cache = new DistributedCache({ redis: raw, prefix: 'azs-spread:' });
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
      await cache.setBatch(keys.map((k) => [k, k.toUpperCase()] as [string, string]), 30);
      const owners = new Set<string>();
      for (const k of keys) {
        const slot = Number(await raw.cluster('KEYSLOT', `azs-spread:${k}`));
        owners.add((raw.slots[slot] ?? [])[0] ?? '?');
      }
      expect(owners.size).toBe(3);
      expect(await cache.getBatch(keys)).toEqual(keys.map((k) => k.toUpperCase()));
    } finally {
      await cache.close();
      // A client we were given stays open.
      expect(raw.status).toBe('ready');
      raw.disconnect();
    }
  });
});
