import { resolveRedis } from '../core/connection.js';
import { durabilityNeedsRedis, resolveDurability } from '../core/durability.js';
import { ValidationError } from '../core/errors.js';
import {
  type CounterHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
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
export function openSessionStore(options: DistributedSessionManagerOptions): SessionStore {
  if (options.store !== undefined && options.redis !== undefined) {
    throw new ValidationError('give either redis or store, not both', { option: 'store' });
  }
  const durability = resolveDurability(options.durability);
  if (options.store !== undefined) {
    // A custom store acknowledges on its own terms: it cannot be made to WAIT.
    if (durability) throw durabilityNeedsRedis();
    const s = assertObject(options.store, 'store') as unknown as SessionStore;
    for (const m of STORE_METHODS) {
      assertFunction((s as unknown as Record<string, unknown>)[m], `store.${m}`);
    }
    return s;
  }
  const conn = resolveRedis(options.redis, {
    connectTimeout: options.connectTimeout,
    commandTimeout: options.commandTimeout,
  });
  if (durability && !conn) throw durabilityNeedsRedis();
  return conn
    ? new RedisSessionStore(conn, durability ? { durability: options.durability } : {})
    : new MemorySessionStore();
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
