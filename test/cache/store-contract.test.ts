/** The CacheStore contract on memory, Redis standalone, requirepass Redis and Cluster. */
import { MemoryCacheStore, RedisCacheStore } from '../../src/cache/index.js';
import { resolveRedis } from '../../src/core/connection.js';
import { describeCacheStore } from '../../src/testing/index.js';
import { servers } from '../harness/env.js';

const s = servers();

describeCacheStore('memory', () => new MemoryCacheStore());
describeCacheStore('redis standalone', () => new RedisCacheStore(resolveRedis(s.redisUrl)!), {
  shared: true,
});
describeCacheStore('redis requirepass', () => new RedisCacheStore(resolveRedis(s.redisAuthUrl)!), {
  shared: true,
});
describeCacheStore(
  'redis cluster',
  () => new RedisCacheStore(resolveRedis({ nodes: s.clusterNodes })!),
  { shared: true },
);
