/**
 * azscale/cache: a two-tier cache (in-process LRU in front of Redis or Redis Cluster, or memory
 * alone), the `cached` decorator/wrapper, and LLM response caching. See docs/cache.md.
 * @packageDocumentation
 */
export {
  DistributedCache,
  cacheRegistry,
  getDefaultCache,
  isDistributedCache,
  setDefaultCache,
  type CacheBackendErrorEvent,
  type CacheBatchEntries,
  type CacheCircuitOptions,
  type CacheEvents,
  type CacheLockOptions,
  type DistributedCacheOptions,
  type GetOrSetOptions,
  type LocalCacheOptions,
} from './distributed-cache.js';
export { CacheRegistry } from './registry.js';
export { cached, type CachedDecorator, type CachedFunction, type CachedOptions } from './cached.js';
export {
  cachedLLMCall,
  isDeterministicLLMRequest,
  llmCacheKey,
  type CachedLLMCallOptions,
  type CachedLLMStream,
  type LLMCacheKeyOptions,
  type LLMRequest,
  type LLMStreamSource,
} from './llm.js';
export { MemoryCacheStore, type MemoryCacheStoreOptions } from './memory-store.js';
export { RedisCacheStore, type ValueWithTtl } from './redis-store.js';
export {
  hasInvalidationBus,
  hasTtlReader,
  type CacheInvalidationBus,
  type CacheStore,
  type CacheTtlReader,
} from './store.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/cache'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  ClosedError,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
} from '../core/errors.js';
