import { type ResolvedBackend, resolveBackend } from '../core/backend.js';
import { durabilityNeedsRedis, resolveDurability } from '../core/durability.js';
import {
  type CounterHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import { KEY_LAYOUT } from '../core/keys.js';
import { assertFunction, assertObject } from '../core/validate.js';
import { MemorySessionStore } from './memory-store.js';
import type { DistributedSessionManagerOptions } from './options.js';
import { RedisSessionStore } from './redis-store.js';
import type { SessionStore } from './store.js';

/** @internal The timed operations of the session manager. */
export type Operation = 'get' | 'save' | 'delete' | 'extend' | 'update' | 'append';
const OPERATIONS: readonly Operation[] = ['get', 'save', 'delete', 'extend', 'update', 'append'];

/** The methods a custom store must have. */
const STORE_METHODS = ['get', 'set', 'delete', 'expire', 'ttl', 'compareAndSet', 'append', 'close'];

/**
 * @internal The store of a manager: the custom `store`, Redis from `redis`, else the embedded
 * memory store. Validates `store`/`redis`/`durability` together.
 */
export function openSessionStore(
  options: DistributedSessionManagerOptions,
): ResolvedBackend<SessionStore> {
  const durability = resolveDurability(options.durability);
  const backend = resolveBackend<MemorySessionStore, RedisSessionStore, SessionStore>(options, {
    module: 'DistributedSessionManager',
    storeName: 'SessionStore',
    memory: () => new MemorySessionStore(),
    redis: (conn) =>
      new RedisSessionStore(conn, durability ? { durability: options.durability } : {}),
    validateStore: (x): x is SessionStore => {
      // Names the missing method, as 0.1.0 did (`store.append`).
      const s = assertObject(x, 'store') as Record<string, unknown>;
      for (const m of STORE_METHODS) assertFunction(s[m], `store.${m}`);
      return true;
    },
    // The prefix is the manager's (validated there); the store is handed full keys.
    prefix: KEY_LAYOUT.session,
  });
  // Memory and a custom store acknowledge on their own terms: they cannot be made to WAIT.
  if (durability && backend.kind !== 'redis') throw durabilityNeedsRedis();
  return backend;
}

/** @internal The manager's metric handles, looked up once (no label lookup per call). */
export interface SessionMeters {
  /** False with the no-op sink: the hot paths then skip reading the clock. */
  timed: boolean;
  timers: Record<Operation, HistogramHandle>;
  errors: Record<Operation, CounterHandle>;
  conflicts: CounterHandle;
  conflictFailures: CounterHandle;
}

/** @internal Looks up every handle of {@link SessionMeters} in `sink`. */
export function sessionMeters(sink: MetricsSink | undefined): SessionMeters {
  const metrics = sink ?? noopMetrics;
  const timers = {} as Record<Operation, HistogramHandle>;
  const errors = {} as Record<Operation, CounterHandle>;
  for (const op of OPERATIONS) {
    timers[op] = metrics.histogram('session_operation_seconds', { operation: op });
    errors[op] = metrics.counter('session_errors_total', { operation: op });
  }
  return {
    timed: metrics !== noopMetrics,
    timers,
    errors,
    conflicts: metrics.counter('session_conflicts_total'),
    conflictFailures: metrics.counter('session_conflict_failures_total'),
  };
}
