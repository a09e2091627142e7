/**
 * azscale/session: distributed sessions that lose no update. `DistributedSessionManager` on an
 * embedded memory store by default, on Redis (standalone or Cluster) with the seed's key layout.
 * @packageDocumentation
 */
export {
  DistributedSessionManager,
  newSessionId,
  type AppendMessageOptions,
  type DistributedSessionManagerOptions,
  type SessionData,
  type SessionEvents,
  type SessionMessage,
  type UpdateSessionOptions,
} from './manager.js';
export type { SessionAppendOptions, SessionStore } from './store.js';
export { MemorySessionStore, type MemorySessionStoreOptions } from './memory-store.js';
export { RedisSessionStore, type RedisSessionStoreOptions } from './redis-store.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/session'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  CallbackError,
  ClosedError,
  ConflictError,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
} from '../core/errors.js';
