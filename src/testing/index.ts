/**
 * azscale/testing: the contract suites every backend of azscale passes, for authors of a new one
 * (a PostgreSQL `QueueBackend`, a Valkey or Memcached `CacheStore`, ...). Each `describeXxx`
 * registers a vitest `describe` block; call it at the top level of a test file that vitest runs.
 * Needs the `vitest` package (an optional peer): importing this subpath without it throws a
 * `MissingDependencyError` naming it. See docs/backends.md.
 * @example
 * // test/pg-queue.test.ts
 * import { describeQueueBackend } from 'azscale/testing';
 * import { PgQueueBackend } from '../src/pg-queue-backend.js';
 *
 * describeQueueBackend('postgres', ({ name, resultTtl }) =>
 *   new PgQueueBackend(pool, { name, resultTtl }),
 * );
 * @packageDocumentation
 */
import { assertPeerInstalled } from '../ai/peer.js';

// Resolved, not loaded: the suites take vitest's API from the worker they run in (see api.ts).
assertPeerInstalled('vitest', 'azscale/testing');

export type { SuiteOptions, TestApi } from './api.js';
export type { SharedStoreSuiteOptions } from './shared.js';
export { describeCacheStore, type CacheStoreSuiteOptions } from './cache-store.js';
export { describeSessionStore, type SessionStoreSuiteOptions } from './session-store.js';
export { describeQueueBackend, type QueueBackendFactoryOptions } from './queue-backend.js';
export { describeBreakerStore } from './breaker-store.js';
export { describeSemaphoreStore } from './semaphore-store.js';
export { describeRateStore } from './rate-store.js';
export { describeSpendStore } from './spend-store.js';
