import type { LRUCache } from 'lru-cache';
import { JsonCodec } from '../core/codec.js';
import { BackendUnavailableError, ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId, validatePrefix } from '../core/keys.js';
import { withSpan } from '../core/trace.js';
import { assertDuration } from '../core/timers.js';
import { assertFunction, assertNumber, assertOneOf } from '../core/validate.js';
import { batchKeys, getMany, normalizeEntries, setMany } from './batch.js';
import type { CacheEngine } from './engine.js';
import { CACHE_INTERNALS, type CachedTarget, targetOf } from './internal.js';
import {
  type CacheBatchEntries,
  type CacheEvents,
  DEFAULT_CHUNK,
  type DistributedCacheOptions,
  type GetOrSetOptions,
  MAX_BACKEND_TIMEOUT,
  MAX_CHUNK,
  type ResolvedLock,
} from './options.js';
import { CacheRegistry } from './registry.js';
import { buildEngine } from './wiring.js';
import type { LocalEntry } from './store.js';

export type {
  CacheBackendErrorEvent,
  CacheBatchEntries,
  CacheCircuitOptions,
  CacheEvents,
  CacheLockOptions,
  DistributedCacheOptions,
  GetOrSetOptions,
  LocalCacheOptions,
  ResolvedLock,
} from './options.js';
export { resolveLock } from './options.js';

const KEY_COUNT_1 = Object.freeze({ 'azscale.key_count': 1 });

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
  /** @internal The view `cached` works through (see `internal.ts`). */
  readonly [CACHE_INTERNALS]: CachedTarget;

  private readonly e: CacheEngine;
  private readonly events = new Emitter<CacheEvents>();

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
        : assertDuration(options.backendTimeout, 'backendTimeout', { max: MAX_BACKEND_TIMEOUT });
    this.chunkSize =
      options.chunkSize === undefined
        ? DEFAULT_CHUNK
        : assertNumber(options.chunkSize, 'chunkSize', { integer: true, min: 1, max: MAX_CHUNK });
    const codec = new JsonCodec(
      options.maxValueBytes === undefined ? {} : { maxValueBytes: options.maxValueBytes },
    );
    const registry = options.registry ?? cacheRegistry;
    if (!(registry instanceof CacheRegistry)) {
      throw new ValidationError(
        `registry must be a CacheRegistry, received ${describeValue(registry)}`,
        { option: 'registry' },
      );
    }
    const engine = buildEngine(options, {
      registry,
      prefix: this.prefix,
      ttl: this.ttl,
      backendTimeout: this.backendTimeout,
      onBackendError: this.onBackendError,
      codec,
      events: this.events,
    });
    this.backend = engine.store.kind;
    this.e = engine;
    this[CACHE_INTERNALS] = engine;
  }

  /** Adds a listener; returns a disposer. */
  on<K extends keyof CacheEvents>(event: K, listener: CacheEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** The value of `key`, or `null` on a miss. */
  get(key: string): Promise<string | null> {
    return withSpan('azscale.cache.get', KEY_COUNT_1, async (span) => {
      const e: CacheEngine = this.e;
      const k = e.prefix + validateId(key, 'key');
      e.ensureOpen();
      const hot = e.hot;
      if (hot !== undefined) {
        const hit = hot.get(k);
        if (hit !== undefined) {
          e.localHits.inc();
          span.setAttribute('azscale.cache.hit', true);
          return hit.text;
        }
      }
      const v = await e.remoteGet(k);
      span.setAttribute('azscale.cache.hit', v !== null);
      return v;
    });
  }

  /**
   * Values of `keys` in their order, `null` for each miss. Keys found in the in-process tier are
   * not asked for; the rest cost one round trip per Redis node.
   */
  getBatch(keys: readonly string[]): Promise<(string | null)[]> {
    const attrs = { 'azscale.key_count': Array.isArray(keys) ? keys.length : 0 };
    return withSpan('azscale.cache.getBatch', attrs, (span) => {
      let full: readonly string[];
      try {
        full = batchKeys(this.prefix, keys);
        this.e.ensureOpen();
      } catch (err) {
        return Promise.reject(err);
      }
      const p = getMany(this.e, full, this.chunkSize);
      if (!span.isRecording()) return p;
      return p.then((out) => {
        let hits = 0;
        for (const v of out) if (v !== null) hits++;
        span.setAttribute('azscale.cache.hits', hits);
        return out;
      });
    });
  }

  /** Stores `value` (a string) for `ttl` seconds (default: the cache's `ttl`). */
  set(key: string, value: string, ttl?: number): Promise<void> {
    return withSpan('azscale.cache.set', KEY_COUNT_1, async () => {
      const e: CacheEngine = this.e;
      const k = e.prefix + validateId(key, 'key');
      e.checkValue(value, 'value');
      const t = e.ttlOf(ttl);
      e.ensureOpen();
      await e.write([[k, value]], t);
    });
  }

  /** Stores every entry for `ttl` seconds: one round trip per Redis node. */
  setBatch(entries: CacheBatchEntries, ttl?: number): Promise<void> {
    return withSpan('azscale.cache.setBatch', undefined, async () => {
      const list = normalizeEntries(this.e, entries);
      const t = this.e.ttlOf(ttl);
      this.e.ensureOpen();
      await setMany(this.e, list, t, this.chunkSize);
    });
  }

  /** Removes `key` from every tier; true when Redis (or memory) held it. */
  delete(key: string): Promise<boolean> {
    return withSpan('azscale.cache.delete', KEY_COUNT_1, async () => {
      const k = this.fullKey(key);
      this.e.ensureOpen();
      return this.e.delete(k);
    });
  }

  /** Decoded JSON value of `key`, or `null` on a miss. */
  async getJSON<T = unknown>(key: string): Promise<T | null> {
    const text = await this.get(key);
    return text === null ? null : this.e.codec.decode<T>(text, `cached value of ${key}`);
  }

  /** Stores `value` as JSON (see the core codec: size limit, no BigInt/cycles). */
  async setJSON(key: string, value: unknown, ttl?: number): Promise<void> {
    await this.set(key, this.e.codec.encode(value, 'value'), ttl);
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
    return withSpan('azscale.cache.getOrSet', KEY_COUNT_1, async () => {
      const e: CacheEngine = this.e;
      const k = e.prefix + validateId(key, 'key');
      assertFunction(loader, 'loader');
      const { ttl, lock } = this.callOptions(ttlOrOptions, options);
      e.ensureOpen();
      const hit = e.hot?.get(k);
      if (hit !== undefined) {
        e.localHits.inc();
        return hit.text;
      }
      const text = await e.singleFlight(k, ttl, lock, async () => {
        const v = await loader();
        e.checkValue(v, 'loader result');
        return v;
      });
      return text as string;
    });
  }

  /** {@link getOrSet} for JSON values: the loader's result is stored through the codec. */
  getOrSetJSON<T>(
    key: string,
    loader: () => T | Promise<T>,
    ttlOrOptions?: number | GetOrSetOptions,
    options?: GetOrSetOptions,
  ): Promise<T> {
    return withSpan('azscale.cache.getOrSet', KEY_COUNT_1, async () => {
      const e: CacheEngine = this.e;
      const k = e.prefix + validateId(key, 'key');
      assertFunction(loader, 'loader');
      const { ttl, lock } = this.callOptions(ttlOrOptions, options);
      e.ensureOpen();
      const hit = e.hot?.get(k);
      if (hit !== undefined) {
        e.localHits.inc();
        return e.codec.decode<T>(hit.text, `cached value of ${key}`);
      }
      const text = await e.singleFlight(k, ttl, lock, async () =>
        e.codec.encode(await loader(), 'loader result'),
      );
      return e.codec.decode<T>(text as string, `cached value of ${key}`);
    });
  }

  /**
   * Resolves once the backend answers (connects if needed) and, with `local`, the invalidation
   * subscription is active. Throws `BackendUnavailableError` after `backendTimeout` seconds,
   * whatever `onBackendError` says: a readiness probe should see the truth.
   */
  async ready(): Promise<void> {
    const e = this.e;
    e.ensureOpen();
    await e.remote.guarded(() => e.store.ping());
    if (!(await e.invalidation.subscribed())) {
      throw new BackendUnavailableError('cache invalidation subscription is not active', {
        context: { backend: this.backend },
      });
    }
  }

  /** Stops the subscription and closes what the cache created. Idempotent. */
  async close(): Promise<void> {
    const e = this.e;
    if (e.isClosed) return;
    e.isClosed = true;
    e.hot = undefined;
    e.remote.dispose();
    await e.invalidation.close();
    e.local?.lru.clear();
    await e.backend.close();
  }

  /** True once {@link close} ran. */
  get isClosed(): boolean {
    return this.e.isClosed;
  }

  /** @internal Key with prefix, validated. */
  fullKey(key: string): string {
    return this.prefix + validateId(key, 'key');
  }

  /** @internal The in-process entries (tests check their bounds). */
  get _hot(): LRUCache<string, LocalEntry> | undefined {
    return this.e.hot;
  }

  /** @internal Size of the stamp map (tests check it stays bounded). */
  get _stampCount(): number {
    return this.e.local?.stampCount ?? 0;
  }

  private callOptions(
    o: number | GetOrSetOptions | undefined,
    extra: GetOrSetOptions | undefined,
  ): { ttl: number; lock: ResolvedLock | undefined } {
    const e = this.e;
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
      return { ttl: e.ttlOf(o ?? extra.ttl), lock: e.lockOf(extra.lock, 'lock') };
    }
    if (o === undefined || typeof o === 'number') return { ttl: e.ttlOf(o), lock: e.defaultLock };
    if (typeof o !== 'object' || o === null) {
      throw new ValidationError(
        `the third argument must be a TTL in seconds or { ttl, lock }, received ${describeValue(o)}`,
        { option: 'ttl' },
      );
    }
    return { ttl: e.ttlOf(o.ttl), lock: e.lockOf(o.lock, 'lock') };
  }
}

/**
 * True for a {@link DistributedCache}, also one from the other (ESM or CJS) copy of azscale
 * loaded in the same process, where `instanceof` would say no.
 */
export function isDistributedCache(v: unknown): v is DistributedCache {
  return targetOf(v) !== undefined && typeof (v as DistributedCache).getOrSetJSON === 'function';
}

/**
 * The process-wide registry: the default cache of `cached` and the sibling groups every cache
 * joins unless its `registry` option names another. See {@link CacheRegistry}.
 */
export const cacheRegistry: CacheRegistry<DistributedCache> = new CacheRegistry(
  () => new DistributedCache(),
);

/**
 * The default cache that `cached` uses when no `cache` option is given: the one given to
 * {@link setDefaultCache}, else an in-memory cache created on first use (it never connects
 * anywhere). Same as `cacheRegistry.default()`.
 */
export function getDefaultCache(): DistributedCache {
  return cacheRegistry.default();
}

/**
 * Makes `cache` the default of `cached` (`undefined`: back to an in-memory one made on first
 * use). Same as `cacheRegistry.setDefault(cache)`; `cached` functions pick it up on their next
 * call unless they were given a `cache`.
 */
export function setDefaultCache(cache: DistributedCache | undefined): Promise<void> {
  if (cache !== undefined && !isDistributedCache(cache)) {
    return Promise.reject(
      new ValidationError(`cache must be a DistributedCache, received ${describeValue(cache)}`, {
        option: 'cache',
      }),
    );
  }
  return cacheRegistry.setDefault(cache);
}
