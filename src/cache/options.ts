import { ValidationError, describeValue } from '../core/errors.js';
import type { BackendOptions } from '../core/backend.js';
import type { RedisInput } from '../core/connection.js';
import { MAX_ID_LENGTH } from '../core/keys.js';
import type { MetricsSink } from '../core/metrics.js';
import { assertDuration } from '../core/timers.js';
import { assertNumber } from '../core/validate.js';
import type { CacheRegistry } from './registry.js';
import type { CacheStore } from './store.js';

/** The in-process tier (L1) in front of Redis. */
export interface LocalCacheOptions {
  /**
   * Most entries kept in process; least recently used go first. In memory-only mode (no
   * `redis`) this bounds the single tier.
   * @default 10000
   */
  max?: number;
  /**
   * Most bytes of values (and keys) kept in process, counted as the strings' in-memory size
   * (2 bytes per UTF-16 code unit, plus a fixed overhead per entry); least recently used go
   * first, and a value larger than this is never kept in process. The seed's `cache_size_mb`
   * maps onto it (`cache_size_mb * 1024 * 1024`). In memory-only mode it bounds the single tier.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
  /**
   * Seconds an entry may live in the in-process tier, capped by the entry's own TTL. This bounds
   * how stale an instance can be when an invalidation message is lost.
   * @default 60
   */
  ttl?: number;
}

/** A circuit that stops calling a Redis that keeps failing. */
export interface CacheCircuitOptions {
  /**
   * Consecutive backend failures (unreachable, timed out) that open the circuit.
   * @default 5
   */
  threshold?: number;
  /**
   * Seconds the circuit stays open before one trial call is let through.
   * @default 5
   */
  halfOpenAfter?: number;
}

/** A Redis lock around a miss, so one loader runs per cluster instead of per process. */
export interface CacheLockOptions {
  /**
   * Seconds the lock is held at most (it expires if the holder dies). Make it longer than the
   * loader takes: once it expires, a waiter takes the lock and runs the loader too.
   * @default 10
   */
  ttl?: number;
  /**
   * Seconds a caller waits for another holder's value before it runs the loader itself. Each
   * check while waiting is one Redis round trip bounded by `backendTimeout`; the wait as a whole
   * is bounded by this.
   * @default the lock's `ttl`
   */
  wait?: number;
  /**
   * Seconds between checks for the holder's value while waiting.
   * @default 0.05
   */
  poll?: number;
}

/**
 * Options of {@link DistributedCache}. The backend options (`redis`, `store` and its alias
 * `backend`, `connection` and its aliases `redisOptions`, `connectTimeout`, `commandTimeout`)
 * mean what they mean in every azscale module (core's `BackendOptions`).
 */
export interface DistributedCacheOptions extends BackendOptions<CacheStore> {
  /**
   * Redis URL, ioredis `Redis`/`Cluster` (yours: never closed by us), `{ nodes: [...] }` for a
   * Cluster or `{ sentinels, name }` for Sentinel we connect to. Omitted (or `null`): an
   * in-process cache (nothing shared between processes).
   * @default undefined
   * @example 'redis://localhost:6379'
   */
  redis?: RedisInput | null;
  /**
   * Default time to live of an entry, in seconds.
   * @default 3600
   */
  ttl?: number;
  /**
   * Prepended to every key. Empty by default so keys match the seed's (`llm:<sha256>`).
   * @default ''
   */
  prefix?: string;
  /**
   * The in-process tier (lru-cache) in front of Redis: `false`, `true` (defaults) or its
   * options. With Redis, writes on one instance remove the key from every other instance's tier
   * through Redis pub/sub. Without Redis there is only one tier and `local.max` bounds it.
   * @default false with `redis`; `{ max: 10000 }` without
   */
  local?: boolean | LocalCacheOptions;
  /**
   * What a Redis failure (unreachable, timed out, circuit open) does. `'degrade'`: reads answer
   * from the in-process tier or miss, writes are dropped, loaders are called through, and a
   * `backendError` event is emitted. `'throw'`: a `BackendUnavailableError`.
   * @default 'degrade'
   */
  onBackendError?: 'degrade' | 'throw';
  /**
   * Seconds any single call may wait on Redis, connecting included (at most 3600). With `lock`,
   * each round trip while waiting for another holder is bounded by it, the wait by `lock.wait`;
   * `getBatch`/`setBatch` bound each chunk by it.
   * @default 1
   */
  backendTimeout?: number;
  /**
   * Keys per round trip of `getBatch`/`setBatch`: larger batches are sent in chunks of this many
   * keys (on a Cluster each chunk is still grouped per node and slot), a few chunks at a time,
   * so one call never sends Redis an unbounded command.
   * @default 1000
   */
  chunkSize?: number;
  /**
   * Circuit breaker (cockatiel) in front of Redis, or `false` for none.
   * @default { threshold: 5, halfOpenAfter: 5 }
   */
  circuit?: false | CacheCircuitOptions;
  /**
   * Default for `getOrSet`/`cached`: take a Redis lock on a miss so that one loader runs per
   * cluster. Ignored without Redis (single-flight already holds in one process).
   * @default false
   */
  lock?: boolean | CacheLockOptions;
  /**
   * Publish an invalidation message after each write so other instances' in-process tiers drop
   * the key. Needed whenever any instance sharing the Redis has `local` on.
   * @default true with `redis`
   */
  invalidation?: boolean;
  /**
   * Largest value accepted, in bytes (UTF-8).
   * @default 1048576
   */
  maxValueBytes?: number;
  /** Metrics sink. @default noopMetrics */
  metrics?: MetricsSink;
  /**
   * A custom backend instead of memory/Redis (advanced: must pass the contract suite). Mutually
   * exclusive with `redis`; never closed by the cache (it is yours). An in-process store that
   * offers `CacheLocalEntries` (as `MemoryCacheStore` does) is the only tier.
   * @default undefined
   */
  store?: CacheStore;
  /**
   * Where instances of this process on the same Redis find each other, so a write drops the key
   * from the others' in-process tier at once (pub/sub is for other processes). Instances in
   * different registries do not see each other's writes until the pub/sub message arrives.
   * @default cacheRegistry (the process-wide registry)
   */
  registry?: CacheRegistry;
}

/** Per-call options of {@link DistributedCache.getOrSet}. */
export interface GetOrSetOptions {
  /** Seconds to live; defaults to the cache's `ttl`. */
  ttl?: number;
  /** Redis lock on a miss (see {@link DistributedCacheOptions.lock}). */
  lock?: boolean | CacheLockOptions;
}

/** Payload of the `backendError` event. */
export interface CacheBackendErrorEvent {
  /** What was attempted: `get`, `set`, `getBatch`, `lock`, `publish`, `subscribe`, ... */
  operation: string;
  /** The failure, usually a `BackendUnavailableError` (cause: the driver's error). */
  error: Error;
  /** True when the call went on without Redis (`onBackendError: 'degrade'`). */
  degraded: boolean;
}

/** Events of {@link DistributedCache}. */
export type CacheEvents = {
  /** Redis failed a call (each failed call, also while the circuit is open). */
  backendError: (event: CacheBackendErrorEvent) => void;
  /** The circuit opened: Redis is skipped until a trial call succeeds. */
  circuitOpen: () => void;
  /** The circuit closed again. */
  circuitClose: () => void;
};

/** Entries accepted by {@link DistributedCache.setBatch}. */
export type CacheBatchEntries =
  | ReadonlyArray<
      | readonly [string, string]
      | {
          /** The cache key. */
          key: string;
          /** The value to store. */
          value: string;
        }
    >
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>;

/** @internal A validated lock option. */
export interface ResolvedLock {
  ttl: number;
  waitMs: number;
  pollMs: number;
}

/** Largest `backendTimeout` (seconds): no cache call should wait on Redis for longer. */
export const MAX_BACKEND_TIMEOUT = 3600;
/** Default of `chunkSize`. */
export const DEFAULT_CHUNK = 1000;
/** Largest `chunkSize`. */
export const MAX_CHUNK = 100_000;
/** Default of `local.max`. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** Default of `local.maxBytes`: 64 MiB. */
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Default of `local.ttl`, seconds. */
export const DEFAULT_LOCAL_TTL = 60;

/** @internal Validates `local`: `undefined` when there is no in-process tier. */
export function resolveLocal(v: unknown): LocalCacheOptions | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return {};
  if (typeof v !== 'object' || v === null) {
    throw new ValidationError(
      `local must be false, true or { max, maxBytes, ttl }, received ${describeValue(v)}`,
      { option: 'local' },
    );
  }
  const o = v as LocalCacheOptions;
  return {
    ...(o.max !== undefined
      ? { max: assertNumber(o.max, 'local.max', { integer: true, positive: true }) }
      : {}),
    ...(o.maxBytes !== undefined
      ? {
          maxBytes: assertNumber(o.maxBytes, 'local.maxBytes', {
            integer: true,
            positive: true,
            max: Number.MAX_SAFE_INTEGER,
          }),
        }
      : {}),
    ...(o.ttl !== undefined ? { ttl: assertDuration(o.ttl, 'local.ttl') } : {}),
  };
}

/** @internal Validates a lock option (shared with `cached`). */
export function resolveLock(v: unknown, option: string): ResolvedLock | undefined {
  if (v === undefined || v === false) return undefined;
  const o = (v === true ? {} : v) as CacheLockOptions;
  if (typeof o !== 'object' || o === null) {
    throw new ValidationError(
      `${option} must be a boolean or { ttl, wait, poll }, received ${describeValue(v)}`,
      { option },
    );
  }
  const ttl = o.ttl === undefined ? 10 : assertDuration(o.ttl, `${option}.ttl`);
  const wait = o.wait === undefined ? ttl : assertDuration(o.wait, `${option}.wait`);
  const poll = o.poll === undefined ? 0.05 : assertDuration(o.poll, `${option}.poll`);
  return { ttl, waitMs: wait * 1000, pollMs: poll * 1000 };
}

/**
 * @internal Validates `circuit` (also when no circuit will be built, so a typo fails the same
 * way in every mode): `undefined` for `false`.
 */
export function resolveCircuit(v: unknown): Required<CacheCircuitOptions> | undefined {
  if (v === false) return undefined;
  const c = (v ?? {}) as CacheCircuitOptions;
  if (typeof c !== 'object' || c === null) {
    throw new ValidationError(
      `circuit must be false or { threshold, halfOpenAfter }, received ${describeValue(c)}`,
      { option: 'circuit' },
    );
  }
  return {
    threshold:
      c.threshold === undefined
        ? 5
        : assertNumber(c.threshold, 'circuit.threshold', { integer: true, positive: true }),
    halfOpenAfter:
      c.halfOpenAfter === undefined ? 5 : assertDuration(c.halfOpenAfter, 'circuit.halfOpenAfter'),
  };
}

/**
 * Same rule as validateId (core/keys.ts), as a boolean for loops over many keys: a char-code
 * scan, cheaper than a regex call for the short keys batches are made of.
 * @internal
 */
export function isPlainKey(k: unknown): k is string {
  if (typeof k !== 'string') return false;
  const n = k.length;
  if (n === 0 || n > MAX_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = k.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}
