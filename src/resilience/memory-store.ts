/**
 * In-memory implementations of the resilience store contracts. They define the reference
 * semantics the Redis scripts must match (the contract suite runs against both), and serve
 * in-process sharing: several breakers or rate limiters given the same store instance see one
 * state.
 */
export { MemoryBreakerStore } from './memory-breaker-store.js';
export { MemorySemaphoreStore } from './memory-semaphore-store.js';
export { MemoryRateStore } from './memory-rate-store.js';
export { WINDOW_SLOTS, gcraStep, windowWait } from './rate-math.js';
