/** The resilience stores (breaker, semaphore, rate) on memory, Redis standalone and Cluster. */
import { resolveRedis } from '../../src/core/connection.js';
import {
  MemoryBreakerStore,
  MemoryRateStore,
  MemorySemaphoreStore,
  RedisBreakerStore,
  RedisRateStore,
  RedisSemaphoreStore,
} from '../../src/resilience/index.js';
import {
  describeBreakerStore,
  describeRateStore,
  describeSemaphoreStore,
} from '../../src/testing/index.js';
import { servers } from '../harness/env.js';

const s = servers();
const standalone = () => resolveRedis(s.redisUrl)!;
const cluster = () => resolveRedis({ nodes: s.clusterNodes })!;
const shared = { shared: true };

describeBreakerStore('memory', () => new MemoryBreakerStore());
describeBreakerStore('redis standalone', () => new RedisBreakerStore(standalone()), shared);
describeBreakerStore('redis cluster', () => new RedisBreakerStore(cluster()), shared);

describeSemaphoreStore('memory', () => new MemorySemaphoreStore());
describeSemaphoreStore('redis standalone', () => new RedisSemaphoreStore(standalone()), shared);
describeSemaphoreStore('redis cluster', () => new RedisSemaphoreStore(cluster()), shared);

describeRateStore('memory', () => new MemoryRateStore());
describeRateStore('redis standalone', () => new RedisRateStore(standalone()), shared);
describeRateStore('redis cluster', () => new RedisRateStore(cluster()), shared);
