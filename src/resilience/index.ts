/**
 * azscale/resilience: circuit breakers (optionally shared across a fleet), concurrency limits
 * that hold across processes, LLM request/token rate limits, retry and timeouts on cockatiel,
 * and a bounded HTTP connection pool. See docs/resilience.md.
 * @packageDocumentation
 */
export {
  CircuitBreaker,
  CircuitBreakerRegistry,
  defaultBreakerRegistry,
  MAX_REGISTERED_BREAKERS,
  circuit,
  circuitBreaker,
  closeCircuitBreakers,
  exportCircuitStates,
  getCircuitBreaker,
  listCircuitBreakers,
} from './circuit.js';
export type {
  CircuitBreakerKind,
  CircuitBreakerRegistryOptions,
  CircuitEvents,
  CircuitSettings,
  RegistryOption,
  CircuitGuarded,
  CircuitOptions,
  CircuitSnapshot,
  CircuitStateName,
} from './circuit.js';
export { ConcurrencyLimiter, limit } from './limiter.js';
export type {
  ConcurrencyLimiterOptions,
  LimitOptions,
  LimiterSource,
  LimiterEvents,
  LimiterRunOptions,
} from './limiter.js';
export { RateLimiter } from './rate-limiter.js';
export type {
  RateAcquireOptions,
  RateAcquireResult,
  RateGrant,
  RateBudget,
  RateLimiterEvents,
  RateLimiterOptions,
  RateTryResult,
} from './rate-limiter.js';
export { retry, timeout, withTimeout } from './retry.js';
export type { BackoffOptions, Resilient, RetryOptions, TimeoutOptions } from './retry.js';
export {
  HttpPool,
  HttpPoolRegistry,
  MAX_SHARED_HTTP_POOLS,
  createHttpPool,
  defaultHttpPools,
  sharedHttpPool,
} from './http-pool.js';
export type { HttpPoolOptions, HttpPoolOriginStats, HttpPoolRegistryOptions } from './http-pool.js';
export { MemoryBreakerStore, MemoryRateStore, MemorySemaphoreStore } from './memory-store.js';
export { RedisBreakerStore, RedisRateStore, RedisSemaphoreStore } from './redis-store.js';
export type { RedisStoreOptions } from './redis-store.js';
export type {
  BreakerStateStore,
  RateAdjustment,
  RateCost,
  RateMode,
  RatePeekResult,
  RateStore,
  RateTakeResult,
  SemaphoreAcquireResult,
  SemaphoreStore,
  SemaphoreWaiter,
  SharedBreakerView,
  TrialResult,
} from './store.js';
export type { ResilienceDecorator } from './decorate.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/resilience'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  CancelledError,
  CircuitOpenError,
  ClosedError,
  LimitExceededError,
  QueueTimeoutError,
  TimeoutError,
  ValidationError,
} from '../core/errors.js';
