import { randomBytes } from 'node:crypto';
import {
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
} from 'cockatiel';
import type { LRUCache } from 'lru-cache';
import { JsonCodec } from '../core/codec.js';
import { toBackendError } from '../core/backend-errors.js';
import { type RedisInput, resolveRedis } from '../core/connection.js';
import {
  AzscaleError,
  BackendUnavailableError,
  ClosedError,
  ValidationError,
  describeValue,
  isBackendUnavailableError,
  isClosedError,
  isSerializationError,
  isValidationError,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { MAX_ID_LENGTH, validateId, validatePrefix } from '../core/keys.js';
import {
  type CounterHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
  secondsSince,
} from '../core/metrics.js';
import { assertDuration, sleep } from '../core/timers.js';
import { assertBoolean, assertFunction, assertNumber, assertOneOf } from '../core/validate.js';
import { type SpanHandle, isTracingEnabled, withSpan } from '../core/trace.js';
import { inChunks } from './chunks.js';
import { MemoryCacheStore } from './memory-store.js';
import { isRedisReplyError } from './reply-error.js';
import { RedisCacheStore } from './redis-store.js';
import {
  type CacheInvalidationBus,
  type CacheStore,
  type CacheTtlReader,
  type LocalEntry,
  hasInvalidationBus,
  hasTtlReader,
  newEntryLru,
  putEntry,
} from './store.js';

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

/** Options of {@link DistributedCache}. */
export interface DistributedCacheOptions {
  /**
   * Redis URL, ioredis `Redis`/`Cluster` (yours: never closed by us), or `{ nodes: [...] }` for
   * a Cluster we create. Omitted: an in-process cache (nothing shared between processes).
   * @example 'redis://localhost:6379'
   */
  redis?: RedisInput;
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
   * A custom backend instead of memory/Redis (advanced: must pass the contract suite).
   * Mutually exclusive with `redis`.
   */
  store?: CacheStore;
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

/**
 * Milliseconds a public call may still spend waiting on Redis: every backend call of one public
 * call draws from it, so get + load + set together never wait longer than `backendTimeout`.
 */
interface Budget {
  leftMs: number;
}

/** @internal */
export interface ResolvedLock {
  ttl: number;
  waitMs: number;
  pollMs: number;
}

const INVALIDATION_CHANNEL = '__azscale:cache:invalidate';

/** Largest `backendTimeout` (seconds): no cache call should wait on Redis for longer. */
const MAX_BACKEND_TIMEOUT = 3600;
const DEFAULT_CHUNK = 1000;
const MAX_CHUNK = 100_000;
/** Default of `local.maxBytes`: 64 MiB. */
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Chunks of one getBatch/setBatch in flight at once. */
const CHUNKS_IN_FLIGHT = 4;
/**
 * Most keys stamped while reads are in flight (see `stamp`). Past it every running read is
 * treated as stale (it does not fill L1), which is always safe.
 */
const STAMP_LIMIT = 1024;

/** Instances with an L1, by Redis target and channel (see `invalidateSiblings`). */
const SIBLINGS = new Map<string, Set<WeakRef<DistributedCache>>>();

const KEY_COUNT_1 = Object.freeze({ 'azscale.key_count': 1 });

/** Marks a traced single-key read as a hit or a miss. */
async function traceHit(span: SpanHandle, p: Promise<string | null>): Promise<string | null> {
  const v = await p;
  span.setAttribute('azscale.cache.hit', v !== null);
  return v;
}

/**
 * A two-tier cache: an optional in-process LRU (L1) in front of Redis (standalone or Cluster),
 * or an in-process cache alone when no `redis` is given. Same API either way.
 *
 * - `getBatch` is one round trip per Redis node (one `MGET` on standalone).
 * - `getOrSet` is single-flight: concurrent misses of one key run the loader once per process,
 *   and once per cluster with `lock`.
 * - A Redis outage never takes a call down with `onBackendError: 'degrade'` (default), and no
 *   call waits on Redis longer than `backendTimeout` seconds.
 *
 * @example
 * const cache = new DistributedCache({ redis: process.env.REDIS_URL, local: { max: 5000, ttl: 30 } });
 * const html = await cache.getOrSet(`page:${id}`, () => render(id), 600);
 */
export class DistributedCache {
  /** Default TTL in seconds. */
  readonly ttl: number;
  /** Key prefix. */
  readonly prefix: string;
  /** `'memory'`, `'redis'` or a custom store's kind. */
  readonly backend: string;
  /** What backend failures do. */
  readonly onBackendError: 'degrade' | 'throw';
  /** Seconds a call may wait on Redis. */
  readonly backendTimeout: number;
  /** Keys per round trip of `getBatch`/`setBatch`. */
  readonly chunkSize: number;

  /**
   * @internal Hot-path view for `cached`: the L1 (Redis mode with `local`) or the memory store's
   * entries (memory mode); `undefined` when there is no in-process tier or after `close()`.
   */
  _hot: LRUCache<string, LocalEntry> | undefined;
  /** @internal */
  readonly _codec: JsonCodec;
  /** @internal counts in-process hits (also used by `cached`) */
  readonly _localHits: CounterHandle;

  private readonly store: CacheStore;
  private readonly shared: boolean;
  private readonly l1: LRUCache<string, LocalEntry> | undefined;
  private readonly l1TtlMs: number;
  private readonly bus: (CacheStore & CacheInvalidationBus) | undefined;
  // With an L1 and a store that reports TTLs, reads fetch the remaining TTL along with the value
  // (same round trip), so an L1 copy never outlives the shared entry.
  private readonly ttlReader: (CacheStore & CacheTtlReader) | undefined;
  private siblings: Set<WeakRef<DistributedCache>> | undefined;
  private siblingsId = '';
  private selfRef: WeakRef<DistributedCache> | undefined;
  private readonly timeoutMs: number;
  private readonly circuit: CircuitBreakerPolicy | undefined;
  private readonly defaultLock: ResolvedLock | undefined;
  private readonly events = new Emitter<CacheEvents>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly instanceId = randomBytes(8).toString('hex');
  private readonly channel: string;
  private readonly m: {
    remoteHits: CounterHandle;
    misses: CounterHandle;
    sets: CounterHandle;
    deletes: CounterHandle;
    backendErrors: CounterHandle;
    loads: CounterHandle;
    loadSeconds: HistogramHandle;
    joins: CounterHandle;
    invalidations: CounterHandle;
    circuitOpens: CounterHandle;
  };
  // A Redis read must not fill L1 with a value older than a write or invalidation of the same
  // key that raced with it. Such events stamp the key with a sequence number while reads are
  // in flight; a read fills L1 only if its key was not stamped after the read began.
  // `stamped` is kept in stamp order and pruned as the oldest read finishes (stamps no running
  // read can see are dropped), and capped at STAMP_LIMIT: it stays small under any load.
  private seq = 0;
  private resetSeq = 0;
  private readonly stamped = new Map<string, number>();
  /** Sequence number at which reads in flight began -> how many; oldest first. */
  private readonly readStarts = new Map<number, number>();
  private readsInFlight = 0;
  private closed = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribing: Promise<void> | undefined;
  private lastSubscribeFailure = Number.NEGATIVE_INFINITY;
  private readonly disposers: { dispose(): void }[] = [];

  constructor(options: DistributedCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(
        `DistributedCache options must be an object, received ${describeValue(options)}`,
        { option: 'options' },
      );
    }
    this.ttl = options.ttl === undefined ? 3600 : assertDuration(options.ttl, 'ttl');
    this.prefix = options.prefix === undefined ? '' : validatePrefix(options.prefix, 'prefix');
    this.onBackendError =
      options.onBackendError === undefined
        ? 'degrade'
        : assertOneOf(options.onBackendError, 'onBackendError', ['degrade', 'throw']);
    this.backendTimeout =
      options.backendTimeout === undefined
        ? 1
        : assertDuration(options.backendTimeout, 'backendTimeout', {
            max: MAX_BACKEND_TIMEOUT,
          });
    this.chunkSize =
      options.chunkSize === undefined
        ? DEFAULT_CHUNK
        : assertNumber(options.chunkSize, 'chunkSize', {
            integer: true,
            min: 1,
            max: MAX_CHUNK,
          });
    // Give up a little before the bound (5%, at most 50 ms) so that timer lateness and the
    // fallback work still finish inside backendTimeout as the caller measures it.
    const boundMs = this.backendTimeout * 1000;
    this.timeoutMs = Math.max(1, Math.floor(boundMs - Math.min(50, boundMs * 0.05)));
    this._codec = new JsonCodec(
      options.maxValueBytes === undefined ? {} : { maxValueBytes: options.maxValueBytes },
    );
    const local = resolveLocal(options.local);
    if (options.store !== undefined && options.redis !== undefined) {
      throw new ValidationError('give either redis or store, not both', { option: 'store' });
    }

    if (options.store !== undefined) {
      const s = options.store;
      if (typeof s !== 'object' || s === null || typeof s.get !== 'function') {
        throw new ValidationError(`store must implement CacheStore, received ${describeValue(s)}`, {
          option: 'store',
        });
      }
      this.store = s;
      this.shared = true;
    } else {
      const conn = resolveRedis(options.redis, {
        connectTimeout: this.backendTimeout,
        commandTimeout: this.backendTimeout,
      });
      if (conn) {
        this.store = new RedisCacheStore(conn);
        this.shared = true;
      } else {
        const mem = new MemoryCacheStore({
          ...(local?.max !== undefined ? { max: local.max } : {}),
          ...(local?.maxBytes !== undefined ? { maxBytes: local.maxBytes } : {}),
        });
        this.store = mem;
        this.shared = false;
        this._hot = mem.entries;
      }
    }
    this.backend = this.store.kind;

    if (this.shared && local) {
      this.l1 = newEntryLru(local.max ?? 10_000, local.maxBytes ?? DEFAULT_MAX_BYTES);
      this.l1TtlMs = Math.max(1, Math.round((local.ttl ?? 60) * 1000));
      this._hot = this.l1;
    } else {
      this.l1TtlMs = 0;
    }
    const invalidation =
      options.invalidation === undefined
        ? true
        : assertBoolean(options.invalidation, 'invalidation');
    this.channel = `${this.prefix}${INVALIDATION_CHANNEL}`;
    this.bus =
      this.shared && invalidation && hasInvalidationBus(this.store) ? this.store : undefined;
    this.ttlReader = this.l1 && hasTtlReader(this.store) ? this.store : undefined;
    if (this.bus && this.store instanceof RedisCacheStore) {
      // Instances of one process on one Redis invalidate each other's L1 directly and at once;
      // pub/sub is for other processes (and on a Cluster its messages take a hop between
      // nodes). A mistaken match only costs an extra L1 miss.
      // Only instances with an L1 are members; every instance here invalidates the members.
      const id = `${this.store.description}|${this.channel}`;
      this.siblingsId = id;
      if (this.l1) {
        let group = SIBLINGS.get(id);
        if (!group) SIBLINGS.set(id, (group = new Set()));
        // Instances collected without close() leave dead refs: drop them as new ones join.
        for (const ref of group) if (ref.deref() === undefined) group.delete(ref);
        this.siblings = group;
        this.selfRef = new WeakRef(this);
        group.add(this.selfRef);
      }
    }
    this.defaultLock = resolveLock(options.lock, 'lock');

    const metrics = options.metrics ?? noopMetrics;
    this._localHits = metrics.counter('cache_hits_total', { tier: 'local' });
    this.m = {
      remoteHits: metrics.counter('cache_hits_total', { tier: 'remote' }),
      misses: metrics.counter('cache_misses_total'),
      sets: metrics.counter('cache_sets_total'),
      deletes: metrics.counter('cache_deletes_total'),
      backendErrors: metrics.counter('cache_backend_errors_total'),
      loads: metrics.counter('cache_loads_total'),
      loadSeconds: metrics.histogram('cache_load_seconds'),
      joins: metrics.counter('cache_single_flight_joins_total'),
      invalidations: metrics.counter('cache_invalidations_received_total'),
      circuitOpens: metrics.counter('cache_circuit_opens_total'),
    };

    if (options.circuit !== false) {
      const c = options.circuit ?? {};
      if (typeof c !== 'object' || c === null) {
        throw new ValidationError(
          `circuit must be false or { threshold, halfOpenAfter }, received ${describeValue(c)}`,
          { option: 'circuit' },
        );
      }
      if (c.threshold !== undefined) {
        assertNumber(c.threshold, 'circuit.threshold', { integer: true, positive: true });
      }
      if (c.halfOpenAfter !== undefined) assertDuration(c.halfOpenAfter, 'circuit.halfOpenAfter');
    }
    if (this.shared && options.circuit !== false) {
      const c = options.circuit ?? {};
      const threshold = c.threshold ?? 5;
      const halfOpenAfter = c.halfOpenAfter ?? 5;
      this.circuit = circuitBreaker(
        handleWhen((e) => isBackendUnavailableError(e)),
        {
          halfOpenAfter: Math.round(halfOpenAfter * 1000),
          breaker: new ConsecutiveBreaker(threshold),
        },
      );
      this.disposers.push(
        this.circuit.onBreak(() => {
          this.m.circuitOpens.inc();
          this.events.emit('circuitOpen');
        }),
        this.circuit.onReset(() => this.events.emit('circuitClose')),
      );
    }
  }

  /** Adds a listener; returns a disposer. */
  on<K extends keyof CacheEvents>(event: K, listener: CacheEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** The value of `key`, or `null` on a miss. */
  get(key: string): Promise<string | null> {
    if (!isTracingEnabled()) return this.getNow(key);
    return withSpan('azscale.cache.get', KEY_COUNT_1, (span) => traceHit(span, this.getNow(key)));
  }

  /** The value of `key`, or `null` on a miss. */
  private async getNow(key: string): Promise<string | null> {
    const k = this.fullKey(key);
    this.ensureOpen();
    const hot = this._hot;
    if (hot !== undefined) {
      const e = hot.get(k);
      if (e !== undefined) {
        this._localHits.inc();
        return e.text;
      }
      if (!this.shared) {
        this.m.misses.inc();
        return null;
      }
    }
    return this.remoteGet(k);
  }

  /**
   * Values of `keys` in their order, `null` for each miss. Keys found in the in-process tier are
   * not asked for; the rest cost one round trip per Redis node.
   */
  getBatch(keys: readonly string[]): Promise<(string | null)[]> {
    if (!isTracingEnabled()) return this.getBatchNow(keys);
    return withSpan(
      'azscale.cache.getBatch',
      { 'azscale.key_count': Array.isArray(keys) ? keys.length : 0 },
      async (span) => {
        const out = await this.getBatchNow(keys);
        let hits = 0;
        for (const v of out) if (v !== null) hits++;
        span.setAttribute('azscale.cache.hits', hits);
        return out;
      },
    );
  }

  private getBatchNow(keys: readonly string[]): Promise<(string | null)[]> {
    // Not async: the common case (one chunk) returns the chunk's promise without another
    // await layer; input errors still arrive as rejections.
    let full: readonly string[];
    try {
      full = this.batchKeys(keys);
      this.ensureOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const n = full.length;
    if (n === 0) return Promise.resolve([]);
    if (n <= this.chunkSize) return this.getChunk(full);
    return this.getChunks(full);
  }

  private async getChunks(full: readonly string[]): Promise<(string | null)[]> {
    const n = full.length;
    const out = new Array<string | null>(n);
    await inChunks(n, this.chunkSize, CHUNKS_IN_FLIGHT, async (start, end) => {
      const part = await this.getChunk(full.slice(start, end));
      for (let i = 0; i < part.length; i++) out[start + i] = part[i] ?? null;
    });
    return out;
  }

  /** Validated, prefixed keys of a batch. */
  private batchKeys(keys: readonly string[]): readonly string[] {
    if (!Array.isArray(keys)) {
      throw new ValidationError(
        `keys must be an array of strings, received ${describeValue(keys)}`,
        {
          option: 'keys',
        },
      );
    }
    const n = keys.length;
    const p = this.prefix;
    // The option name is built only on failure: no allocation per valid key. Without a prefix
    // the caller's array is sent as is (the stores never mutate it).
    let full: readonly string[];
    if (p === '') {
      for (let i = 0; i < n; i++) if (!isPlainKey(keys[i])) validateId(keys[i], `keys[${i}]`);
      full = keys;
    } else {
      const withPrefix = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const k = keys[i];
        withPrefix[i] = p + (isPlainKey(k) ? k : validateId(k, `keys[${i}]`));
      }
      full = withPrefix;
    }
    return full;
  }

  /** One round trip's worth of {@link getBatch} (at most `chunkSize` prefixed keys). */
  private async getChunk(full: readonly string[]): Promise<(string | null)[]> {
    const n = full.length;
    const l1 = this.l1;
    if (!this.shared) return this.store.getMany(full);
    if (l1 === undefined) {
      const out = await this.degrade('getBatch', () => this.store.getMany(full), null);
      return out ?? new Array<string | null>(n).fill(null);
    }
    const out = new Array<string | null>(n).fill(null);
    const missIdx: number[] = [];
    const missKeys: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = l1.get(full[i] as string);
      if (e !== undefined) {
        out[i] = e.text;
        this._localHits.inc();
      } else {
        missIdx.push(i);
        missKeys.push(full[i] as string);
      }
    }
    if (missKeys.length === 0) return out;
    this.startSubscription();
    const s0 = this.beginRead();
    try {
      const reader = this.ttlReader;
      const vals = await this.degrade(
        'getBatch',
        (): Promise<(string | null)[] | [string | null, number][]> =>
          reader ? reader.getManyWithTtl(missKeys) : this.store.getMany(missKeys),
        null,
      );
      if (vals === null) return out;
      for (let j = 0; j < missIdx.length; j++) {
        const r = vals[j];
        const v =
          (reader ? (r as [string | null, number] | undefined)?.[0] : (r as string | null)) ?? null;
        const k = missKeys[j] as string;
        out[missIdx[j] as number] = v;
        if (v !== null && this.mayFill(k, s0)) {
          const ttl = reader ? (r as [string | null, number])[1] : -1;
          putEntry(l1, k, v, this.l1Ttl(ttl));
        }
      }
      return out;
    } finally {
      this.endRead(s0);
    }
  }

  /** Stores `value` (a string) for `ttl` seconds (default: the cache's `ttl`). */
  set(key: string, value: string, ttl?: number): Promise<void> {
    if (!isTracingEnabled()) return this.setNow(key, value, ttl);
    return withSpan('azscale.cache.set', KEY_COUNT_1, () => this.setNow(key, value, ttl));
  }

  private async setNow(key: string, value: string, ttl?: number): Promise<void> {
    const k = this.fullKey(key);
    this.checkValue(value, 'value');
    const t = this.ttlOf(ttl);
    this.ensureOpen();
    await this.write([[k, value]], t, this.newBudget());
  }

  /** Stores every entry for `ttl` seconds: one round trip per Redis node. */
  setBatch(entries: CacheBatchEntries, ttl?: number): Promise<void> {
    if (!isTracingEnabled()) return this.setBatchNow(entries, ttl);
    return withSpan('azscale.cache.setBatch', undefined, () => this.setBatchNow(entries, ttl));
  }

  private async setBatchNow(entries: CacheBatchEntries, ttl?: number): Promise<void> {
    const list = this.normalizeEntries(entries);
    const t = this.ttlOf(ttl);
    this.ensureOpen();
    const n = list.length;
    if (n === 0) return;
    const size = this.chunkSize;
    if (n <= size) return this.write(list, t);
    // Each chunk is its own round trip (own backendTimeout) and its own invalidation message.
    await inChunks(n, size, CHUNKS_IN_FLIGHT, (start, end) =>
      this.write(list.slice(start, end), t),
    );
  }

  /** Removes `key` from every tier; true when Redis (or memory) held it. */
  delete(key: string): Promise<boolean> {
    if (!isTracingEnabled()) return this.deleteNow(key);
    return withSpan('azscale.cache.delete', KEY_COUNT_1, () => this.deleteNow(key));
  }

  private async deleteNow(key: string): Promise<boolean> {
    const k = this.fullKey(key);
    this.ensureOpen();
    this.stamp(k);
    this.m.deletes.inc();
    this.l1?.delete(k);
    if (!this.shared) return this.store.delete(k);
    const b = this.newBudget();
    const existed = await this.degrade('delete', () => this.store.delete(k), false, b);
    this.invalidateSiblings([k]);
    await this.publish([k], b);
    return existed;
  }

  /** Decoded JSON value of `key`, or `null` on a miss. */
  async getJSON<T = unknown>(key: string): Promise<T | null> {
    const text = await this.get(key);
    return text === null ? null : this._codec.decode<T>(text, `cached value of ${key}`);
  }

  /** Stores `value` as JSON (see the core codec: size limit, no BigInt/cycles). */
  async setJSON(key: string, value: unknown, ttl?: number): Promise<void> {
    await this.set(key, this._codec.encode(value, 'value'), ttl);
  }

  /**
   * The value of `key`; on a miss runs `loader`, stores its string and returns it. Concurrent
   * misses of one key in this process share one loader call; with `lock` one per cluster.
   * The third argument is the TTL in seconds or {@link GetOrSetOptions}; options may also come
   * fourth, after a TTL: `getOrSet(key, loader, 60, { lock: true })`.
   */
  getOrSet(
    key: string,
    loader: () => string | Promise<string>,
    ttlOrOptions?: number | GetOrSetOptions,
    options?: GetOrSetOptions,
  ): Promise<string> {
    if (!isTracingEnabled()) return this.getOrSetNow(key, loader, ttlOrOptions, options);
    return withSpan('azscale.cache.getOrSet', KEY_COUNT_1, () =>
      this.getOrSetNow(key, loader, ttlOrOptions, options),
    );
  }

  private async getOrSetNow(
    key: string,
    loader: () => string | Promise<string>,
    ttlOrOptions?: number | GetOrSetOptions,
    options?: GetOrSetOptions,
  ): Promise<string> {
    const k = this.fullKey(key);
    assertFunction(loader, 'loader');
    const { ttl, lock } = this.callOptions(ttlOrOptions, options);
    this.ensureOpen();
    const hot = this._hot;
    const e = hot?.get(k);
    if (e !== undefined) {
      this._localHits.inc();
      return e.text;
    }
    const text = await this.singleFlight(k, ttl, lock, async () => {
      const v = await loader();
      this.checkValue(v, 'loader result');
      return v;
    });
    return text as string;
  }

  /** {@link getOrSet} for JSON values: the loader's result is stored through the codec. */
  getOrSetJSON<T>(
    key: string,
    loader: () => T | Promise<T>,
    ttlOrOptions?: number | GetOrSetOptions,
    options?: GetOrSetOptions,
  ): Promise<T> {
    if (!isTracingEnabled()) return this.getOrSetJSONNow(key, loader, ttlOrOptions, options);
    return withSpan('azscale.cache.getOrSet', KEY_COUNT_1, () =>
      this.getOrSetJSONNow(key, loader, ttlOrOptions, options),
    );
  }

  private async getOrSetJSONNow<T>(
    key: string,
    loader: () => T | Promise<T>,
    ttlOrOptions?: number | GetOrSetOptions,
    options?: GetOrSetOptions,
  ): Promise<T> {
    const k = this.fullKey(key);
    assertFunction(loader, 'loader');
    const { ttl, lock } = this.callOptions(ttlOrOptions, options);
    this.ensureOpen();
    const e = this._hot?.get(k);
    if (e !== undefined) {
      this._localHits.inc();
      return this._codec.decode<T>(e.text, `cached value of ${key}`);
    }
    const text = await this.singleFlight(k, ttl, lock, async () =>
      this._codec.encode(await loader(), 'loader result'),
    );
    return this._codec.decode<T>(text as string, `cached value of ${key}`);
  }

  /**
   * Resolves once the backend answers (connects if needed) and, with `local`, the invalidation
   * subscription is active. Throws `BackendUnavailableError` after `backendTimeout` seconds,
   * whatever `onBackendError` says: a readiness probe should see the truth.
   */
  async ready(): Promise<void> {
    this.ensureOpen();
    await this.guarded(() => this.store.ping());
    if (this.l1 && this.bus) {
      this.startSubscription(true);
      await this.subscribing;
      if (!this.unsubscribe) {
        throw new BackendUnavailableError('cache invalidation subscription is not active', {
          context: { backend: this.backend },
        });
      }
    }
  }

  /** Stops the subscription and closes what the cache created. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this._hot = undefined;
    if (this.selfRef && this.siblings) {
      this.siblings.delete(this.selfRef);
      if (this.siblings.size === 0 && SIBLINGS.get(this.siblingsId) === this.siblings) {
        SIBLINGS.delete(this.siblingsId);
      }
    }
    for (const d of this.disposers) d.dispose();
    await this.subscribing?.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub) await unsub().catch(() => undefined);
    this.l1?.clear();
    await this.store.close();
  }

  // ---- internals shared with `cached` ------------------------------------------------------

  /** @internal Key with prefix, validated. */
  fullKey(key: string): string {
    return this.prefix + validateId(key, 'key');
  }

  /** @internal Resolves a per-call/per-decorator lock option against the cache default. */
  _lockOf(lock: boolean | CacheLockOptions | undefined, option: string): ResolvedLock | undefined {
    return lock === undefined ? this.defaultLock : resolveLock(lock, option);
  }

  /** @internal TTL validation shared with `cached`. */
  _ttlOf(ttl: unknown, option = 'ttl'): number {
    return ttl === undefined ? this.ttl : assertDuration(ttl, option);
  }

  /**
   * @internal The miss path of `cached`: single-flight load of `fullKey` (already prefixed),
   * returning the decoded value (a JSON round trip, so hits and misses return the same shape).
   */
  async _cachedMiss(
    fullKey: string,
    call: () => unknown,
    ttl: number,
    lock: ResolvedLock | undefined,
  ): Promise<unknown> {
    this.ensureOpen();
    const text = await this.singleFlight(fullKey, ttl, lock, async () => {
      const v = await call();
      // `undefined` has no JSON form: such results are returned but never stored.
      return v === undefined ? undefined : this._codec.encode(v, 'cached result');
    });
    return text === undefined ? undefined : this._codec.decode(text, 'cached result');
  }

  /** @internal Decodes an in-process entry once and keeps the value for later hits. */
  _decodeEntry(e: LocalEntry): unknown {
    if (!e.decoded) {
      e.value = this._codec.decode(e.text, 'cached result');
      e.decoded = true;
    }
    return e.value;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** L1 lifetime of an entry whose remote TTL is `remoteMs` (-1: none): never beyond it. */
  private l1Ttl(remoteMs: number): number {
    return remoteMs > 0 ? Math.min(this.l1TtlMs, remoteMs) : this.l1TtlMs;
  }

  private beginRead(): number {
    const s0 = this.seq;
    this.readsInFlight++;
    // seq never decreases, so a new start is never older than those already in the map and
    // the map's insertion order is oldest first.
    this.readStarts.set(s0, (this.readStarts.get(s0) ?? 0) + 1);
    return s0;
  }

  private endRead(s0: number): void {
    if (--this.readsInFlight === 0) {
      this.stamped.clear();
      this.readStarts.clear();
      return;
    }
    const n = (this.readStarts.get(s0) ?? 1) - 1;
    if (n > 0) {
      this.readStarts.set(s0, n);
      return;
    }
    this.readStarts.delete(s0);
    // A stamp no newer than the oldest running read's start blocks no running read.
    const oldest = this.readStarts.keys().next().value as number;
    for (const [k, t] of this.stamped) {
      if (t > oldest) break;
      this.stamped.delete(k);
    }
  }

  private mayFill(k: string, s0: number): boolean {
    if (this.resetSeq > s0) return false;
    const t = this.stamped.get(k);
    return t === undefined || t <= s0;
  }

  private stamp(k: string): void {
    this.seq++;
    if (this.readsInFlight === 0 || this.l1 === undefined) return;
    // Re-inserted so that the map stays in stamp order.
    this.stamped.delete(k);
    if (this.stamped.size >= STAMP_LIMIT) {
      this.resetSeq = this.seq;
      this.stamped.clear();
      return;
    }
    this.stamped.set(k, this.seq);
  }

  /** @internal Size of the stamp map (tests check it stays bounded). */
  get _stampCount(): number {
    return this.stamped.size;
  }

  private newBudget(): Budget {
    return { leftMs: this.timeoutMs };
  }

  private ttlOf(ttl: number | undefined): number {
    return this._ttlOf(ttl);
  }

  private callOptions(
    o: number | GetOrSetOptions | undefined,
    extra: GetOrSetOptions | undefined,
  ): {
    ttl: number;
    lock: ResolvedLock | undefined;
  } {
    if (extra !== undefined) {
      if (typeof extra !== 'object' || extra === null) {
        throw new ValidationError(
          `the fourth argument must be { ttl, lock }, received ${describeValue(extra)}`,
          { option: 'options' },
        );
      }
      if (o !== undefined && typeof o !== 'number') {
        throw new ValidationError('give the TTL either as the third argument or in options', {
          option: 'ttl',
        });
      }
      return { ttl: this.ttlOf(o ?? extra.ttl), lock: this._lockOf(extra.lock, 'lock') };
    }
    if (o === undefined || typeof o === 'number') {
      return { ttl: this.ttlOf(o), lock: this.defaultLock };
    }
    if (typeof o !== 'object' || o === null) {
      throw new ValidationError(
        `the third argument must be a TTL in seconds or { ttl, lock }, received ${describeValue(o)}`,
        { option: 'ttl' },
      );
    }
    return { ttl: this.ttlOf(o.ttl), lock: this._lockOf(o.lock, 'lock') };
  }

  private checkValue(value: unknown, what: string): asserts value is string {
    if (typeof value !== 'string') {
      throw new ValidationError(
        `${what} must be a string (use setJSON/getOrSetJSON for other values), received ${describeValue(value)}`,
        { option: what === 'value' ? 'value' : 'loader' },
      );
    }
    this._codec.checkSize(value, what);
  }

  private normalizeEntries(entries: CacheBatchEntries): [string, string][] {
    let pairs: [unknown, unknown][];
    if (entries instanceof Map) {
      pairs = [...entries.entries()];
    } else if (Array.isArray(entries)) {
      pairs = entries.map((e: unknown, i) => {
        if (Array.isArray(e) && e.length === 2) return [e[0], e[1]] as [unknown, unknown];
        if (typeof e === 'object' && e !== null && 'key' in e && 'value' in e) {
          return [(e as { key: unknown }).key, (e as { value: unknown }).value] as [
            unknown,
            unknown,
          ];
        }
        throw new ValidationError(
          `entries[${i}] must be [key, value] or { key, value }, received ${describeValue(e)}`,
          { option: 'entries' },
        );
      });
    } else if (typeof entries === 'object' && entries !== null) {
      pairs = Object.entries(entries);
    } else {
      throw new ValidationError(
        `entries must be an array of [key, value], a Map or an object, received ${describeValue(entries)}`,
        { option: 'entries' },
      );
    }
    return pairs.map(([k, v], i) => {
      const key = this.prefix + (isPlainKey(k) ? k : validateId(k, `entries[${i}] key`));
      this.checkValue(v, 'value');
      return [key, v];
    });
  }

  private ensureOpen(): void {
    if (this.closed) {
      throw new ClosedError('the DistributedCache was closed', {
        context: { backend: this.backend },
      });
    }
  }

  private async remoteGet(k: string, b: Budget = this.newBudget()): Promise<string | null> {
    if (!this.shared) {
      const v = await this.store.get(k);
      if (v === null) this.m.misses.inc();
      else this._localHits.inc();
      return v;
    }
    if (this.l1 === undefined) {
      // No in-process tier to fill: no read ordering to track.
      const v = await this.degrade('get', () => this.store.get(k), null, b);
      if (v === null) this.m.misses.inc();
      else this.m.remoteHits.inc();
      return v;
    }
    this.startSubscription();
    const s0 = this.beginRead();
    try {
      const reader = this.ttlReader;
      let v: string | null;
      let ttl = -1;
      if (reader) {
        const r = await this.degrade('get', () => reader.getWithTtl(k), null, b);
        v = r === null ? null : r[0];
        if (r !== null) ttl = r[1];
      } else {
        v = await this.degrade('get', () => this.store.get(k), null, b);
      }
      if (v === null) {
        this.m.misses.inc();
        return null;
      }
      this.m.remoteHits.inc();
      if (this.l1 !== undefined && this.mayFill(k, s0)) {
        putEntry(this.l1, k, v, this.l1Ttl(ttl));
      }
      return v;
    } finally {
      this.endRead(s0);
    }
  }

  private async write(
    entries: [string, string][],
    ttl: number,
    b: Budget = this.newBudget(),
  ): Promise<void> {
    for (const e of entries) this.stamp(e[0]);
    this.m.sets.inc(entries.length);
    if (!this.shared) {
      await (entries.length === 1
        ? this.store.set(
            (entries[0] as [string, string])[0],
            (entries[0] as [string, string])[1],
            ttl,
          )
        : this.store.setMany(entries, ttl));
      return;
    }
    const ok = await this.degrade(
      entries.length === 1 ? 'set' : 'setBatch',
      async () => {
        if (entries.length === 1) {
          const [k, v] = entries[0] as [string, string];
          await this.store.set(k, v, ttl);
        } else {
          await this.store.setMany(entries, ttl);
        }
        return true;
      },
      false,
      b,
    );
    const l1 = this.l1;
    if (l1 !== undefined) {
      // Also on a dropped write: this process reads its own write back. The tier is cleared
      // when the subscription comes back, so this cannot outlive the outage unnoticed.
      const ms = Math.min(this.l1TtlMs, Math.max(1, Math.round(ttl * 1000)));
      for (const [k, v] of entries) putEntry(l1, k, v, ms);
    }
    const keys = entries.map((e) => e[0]);
    this.invalidateSiblings(keys);
    if (ok) await this.publish(keys, b);
  }

  private async publish(keys: string[], b: Budget): Promise<void> {
    const bus = this.bus;
    if (!bus) return;
    const msg = `${this.instanceId}|${keys.join('\n')}`;
    await this.degrade('publish', () => bus.publish(this.channel, msg), undefined, b);
  }

  /** Drops `keys` from the L1 of this process's other instances on the same Redis, at once. */
  private invalidateSiblings(keys: readonly string[]): void {
    // Looked up each time: the group is removed when its last member closes, and a new one may
    // have been made since for this target (an instance without an L1 is not a member).
    if (this.siblingsId === '') return;
    const group = SIBLINGS.get(this.siblingsId);
    if (group === undefined || group.size === 0) return;
    for (const ref of group) {
      const other = ref.deref();
      if (other === undefined) {
        group.delete(ref);
        continue;
      }
      if (other !== this) other.dropLocal(keys);
    }
  }

  private dropLocal(keys: readonly string[]): void {
    const l1 = this.l1;
    if (!l1 || this.closed) return;
    for (const k of keys) {
      this.stamp(k);
      l1.delete(k);
    }
  }

  private onInvalidation(msg: string): void {
    const bar = msg.indexOf('|');
    if (bar < 0 || msg.slice(0, bar) === this.instanceId) return;
    this.m.invalidations.inc();
    const l1 = this.l1;
    if (!l1) return;
    for (const k of msg.slice(bar + 1).split('\n')) {
      this.stamp(k);
      l1.delete(k);
    }
  }

  private startSubscription(force = false): void {
    if (this.unsubscribe || this.subscribing || !this.l1 || !this.bus || this.closed) return;
    // After a failed attempt, retry at most once per backendTimeout (never per call).
    if (!force && performance.now() - this.lastSubscribeFailure < this.timeoutMs) return;
    const bus = this.bus;
    // Ping on the command connection first: while Redis is known to be down it fails at once,
    // so an outage costs no new subscriber connection per retry (each one, once created, would
    // reconnect on its own and all of them would come back with Redis).
    const attempt = bus.ping().then(() =>
      bus.subscribe(
        this.channel,
        (m) => this.onInvalidation(m),
        () => {
          // (Re)subscribed: anything published meanwhile was missed.
          this.resetSeq = ++this.seq;
          this.l1?.clear();
        },
      ),
    );
    this.subscribing = withTimeout(attempt, this.timeoutMs, () => {
      // Given up on: if it still succeeds later, undo it, or each retry would leave one more
      // subscribed connection behind.
      attempt.then((unsub) => unsub().catch(() => undefined)).catch(() => undefined);
      return this.timeoutError('subscribe');
    })
      .then(
        async (unsub) => {
          if (this.closed) {
            await unsub().catch(() => undefined);
            return;
          }
          this.unsubscribe = unsub;
        },
        (e: unknown) => {
          this.lastSubscribeFailure = performance.now();
          this.reportBackendError('subscribe', e, true);
        },
      )
      .finally(() => {
        this.subscribing = undefined;
      });
  }

  private async singleFlight(
    k: string,
    ttl: number,
    lock: ResolvedLock | undefined,
    load: () => Promise<string | undefined>,
  ): Promise<string | undefined> {
    const running = this.inflight.get(k);
    if (running) {
      this.m.joins.inc();
      return running;
    }
    const p = this.fill(k, ttl, lock, load, this.newBudget()).finally(() => {
      this.inflight.delete(k);
    });
    this.inflight.set(k, p);
    return p;
  }

  private async fill(
    k: string,
    ttl: number,
    lock: ResolvedLock | undefined,
    load: () => Promise<string | undefined>,
    b: Budget,
  ): Promise<string | undefined> {
    const hit = await this.remoteGet(k, b);
    if (hit !== null) return hit;
    if (lock && this.shared) return this.lockedLoad(k, ttl, lock, load, b);
    return this.loadAndStore(k, ttl, load, b);
  }

  private async loadAndStore(
    k: string,
    ttl: number,
    load: () => Promise<string | undefined>,
    b: Budget,
  ): Promise<string | undefined> {
    const t0 = performance.now();
    this.m.loads.inc();
    const text = await load();
    this.m.loadSeconds.observe(secondsSince(t0));
    if (text !== undefined) await this.write([[k, text]], ttl, b);
    return text;
  }

  private async lockedLoad(
    k: string,
    ttl: number,
    lock: ResolvedLock,
    load: () => Promise<string | undefined>,
    b: Budget,
  ): Promise<string | undefined> {
    const lockKey = `${k}:__azs_lock`;
    const token = randomBytes(12).toString('hex');
    const deadline = performance.now() + lock.waitMs;
    // Waiting for another holder is bounded by lock.wait. Each round trip gets a budget of its
    // own (backendTimeout): sharing the call's budget made a long wait "time out" on Redis after
    // a few hundred polls, and every waiter then ran the loader itself.
    let budget = b;
    for (;;) {
      const got = await this.degrade(
        'lock',
        () => this.store.setIfAbsent(lockKey, token, lock.ttl),
        null,
        budget,
      );
      if (got === null) return this.loadAndStore(k, ttl, load, this.newBudget()); // call through
      if (got) {
        try {
          // The previous holder may have written between our read and our lock.
          const v = await this.remoteGet(k, this.newBudget());
          if (v !== null) return v;
          return await this.loadAndStore(k, ttl, load, this.newBudget());
        } finally {
          // Not awaited: the caller has its value; an unreleased lock expires after lock.ttl.
          this.degrade('unlock', () => this.store.deleteIfEquals(lockKey, token), false).catch(
            () => undefined,
          );
        }
      }
      const left = deadline - performance.now();
      if (left <= 0) return this.loadAndStore(k, ttl, load, this.newBudget());
      await sleep(Math.min(lock.pollMs, left));
      if (this.closed) throw new ClosedError('the DistributedCache was closed while waiting');
      const v = await this.remoteGet(k, this.newBudget());
      if (v !== null) return v;
      budget = this.newBudget();
    }
  }

  /** Runs a store call under the timeout and the circuit; failures become AzscaleErrors. */
  private guarded<T>(fn: () => Promise<T>, b?: Budget): Promise<T> {
    let ms = this.timeoutMs;
    if (b !== undefined) {
      if (b.leftMs < 1) return Promise.reject(this.timeoutError('call budget used up'));
      ms = Math.min(ms, b.leftMs);
    }
    const t0 = performance.now();
    // The deadline counts from here: time spent waiting on a half-open circuit's trial call
    // comes out of this call's allowance too.
    const deadline = t0 + ms;
    const run = () => {
      const left = deadline - performance.now();
      if (left < 1) return Promise.reject(this.timeoutError('call'));
      return withTimeout(fn(), left, () => this.timeoutError('call'));
    };
    const p = this.circuit ? this.circuit.execute(run) : run();
    return p.then(
      (v) => {
        if (b !== undefined) b.leftMs -= performance.now() - t0;
        return v;
      },
      (e: unknown) => {
        if (b !== undefined) b.leftMs -= performance.now() - t0;
        throw this.backendFailure(e);
      },
    );
  }

  /** What a failed store call throws: always an azscale error, with no command arguments. */
  private backendFailure(e: unknown): AzscaleError {
    if (isBrokenCircuitError(e)) {
      return new BackendUnavailableError(
        `cache backend (${this.backend}) is skipped: circuit open after repeated failures`,
        { context: { backend: this.backend, circuit: 'open' } },
      );
    }
    if (e instanceof AzscaleError) return e;
    if (isRedisReplyError(e)) return toBackendError(e, { op: 'cache call' });
    // A custom store's own error: typed, with the original kept as the cause.
    return new AzscaleError(`cache backend (${this.backend}) failed: ${describeError(e)}`, {
      cause: e,
      context: { backend: this.backend },
    });
  }

  /** {@link guarded}, then either the fallback (degrade) or a throw, with event and metric. */
  private async degrade<T, F>(
    op: string,
    fn: () => Promise<T>,
    fallback: F,
    b?: Budget,
  ): Promise<T | F> {
    try {
      return await this.guarded(fn, b);
    } catch (e) {
      // Our own input and lifecycle errors are the caller's; anything the backend failed with
      // (unreachable, timed out, or a reply error such as WRONGTYPE) degrades or throws.
      if (isValidationError(e) || isSerializationError(e) || isClosedError(e)) throw e;
      const degraded = this.onBackendError === 'degrade';
      this.reportBackendError(op, e, degraded);
      if (!degraded) throw e;
      return fallback;
    }
  }

  private reportBackendError(op: string, e: unknown, degraded: boolean): void {
    this.m.backendErrors.inc();
    if (this.events.has('backendError')) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.events.emit('backendError', { operation: op, error, degraded });
    }
  }

  private timeoutError(op: string): BackendUnavailableError {
    return new BackendUnavailableError(
      `cache backend (${this.backend}) did not answer within backendTimeout=${this.backendTimeout} s (${op})`,
      { context: { backend: this.backend, timeout: this.backendTimeout } },
    );
  }
}

// Same rule as validateId (core/keys.ts), as a boolean for loops over many keys: a char-code
// scan, cheaper than a regex call for the short keys batches are made of.
function isPlainKey(k: unknown): k is string {
  if (typeof k !== 'string') return false;
  const n = k.length;
  if (n === 0 || n > MAX_ID_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = k.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
  }
  return true;
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 200) : describeValue(e);
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function resolveLocal(v: unknown): LocalCacheOptions | undefined {
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
 * True for a {@link DistributedCache}, also one from the other (ESM or CJS) copy of azscale
 * loaded in the same process, where `instanceof` would say no.
 */
export function isDistributedCache(v: unknown): v is DistributedCache {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as DistributedCache).getOrSetJSON === 'function' &&
    typeof (v as DistributedCache)._cachedMiss === 'function' &&
    typeof (v as DistributedCache)._decodeEntry === 'function'
  );
}

let defaultCache: DistributedCache | undefined;

/**
 * The process-wide in-memory cache that `cached` uses when no `cache` option is given. Created
 * on first use; never connects anywhere.
 */
export function getDefaultCache(): DistributedCache {
  if (!defaultCache || defaultCache._hot === undefined) defaultCache = new DistributedCache();
  return defaultCache;
}
