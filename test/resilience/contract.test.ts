import { resolveRedis } from '../../src/core/connection.js';
import {
  MemoryBreakerStore,
  MemoryRateStore,
  MemorySemaphoreStore,
  RedisBreakerStore,
  RedisRateStore,
  RedisSemaphoreStore,
} from '../../src/resilience/index.js';
import { servers } from '../harness/env.js';
import { breakerStoreContract, rateStoreContract, semaphoreStoreContract } from './contract.js';

const s = servers();
const standalone = () => resolveRedis(s.redisUrl)!;
const cluster = () => resolveRedis({ nodes: s.clusterNodes })!;

breakerStoreContract('memory', () => new MemoryBreakerStore());
breakerStoreContract('redis', () => new RedisBreakerStore(standalone()));
breakerStoreContract('cluster', () => new RedisBreakerStore(cluster()));

semaphoreStoreContract('memory', () => new MemorySemaphoreStore());
semaphoreStoreContract('redis', () => new RedisSemaphoreStore(standalone()));
semaphoreStoreContract('cluster', () => new RedisSemaphoreStore(cluster()));

rateStoreContract('memory', () => new MemoryRateStore());
rateStoreContract('redis', () => new RedisRateStore(standalone()));
rateStoreContract('cluster', () => new RedisRateStore(cluster()));
