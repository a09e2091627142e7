/**
 * The Redis implementations of the resilience contracts, one file per contract; this file keeps
 * the 0.1.0 import path.
 */
export { RedisBreakerStore } from './redis-breaker-store.js';
export { RedisSemaphoreStore } from './redis-semaphore-store.js';
export { OP_ID_TTL_MS, RedisRateStore } from './redis-rate-store.js';
export type { RedisStoreOptions } from './redis-common.js';
