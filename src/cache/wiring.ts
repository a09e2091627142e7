import type { JsonCodec } from '../core/codec.js';
import { type ResolvedBackend, hasMethods, resolveBackend } from '../core/backend.js';
import type { Emitter } from '../core/events.js';
import { type MetricsSink, noopMetrics } from '../core/metrics.js';
import { assertBoolean } from '../core/validate.js';
import { CacheEngine, type CacheMeters } from './engine.js';
import { Invalidation } from './invalidation.js';
import { LocalTier } from './local-tier.js';
import { MemoryCacheStore } from './memory-store.js';
import {
  type CacheEvents,
  DEFAULT_LOCAL_TTL,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ENTRIES,
  type DistributedCacheOptions,
  type LocalCacheOptions,
  resolveCircuit,
  resolveLocal,
  resolveLock,
} from './options.js';
import { RedisCacheStore } from './redis-store.js';
import type { CacheRegistry } from './registry.js';
import { RemoteTier } from './remote-tier.js';
import { SingleFlight } from './single-flight.js';
import { type CacheStore, hasInvalidationBus, hasLocalEntries, hasTtlReader } from './store.js';

/** @internal Options the public class validated already. */
export interface ValidatedBasics {
  readonly prefix: string;
  readonly ttl: number;
  readonly backendTimeout: number;
  readonly onBackendError: 'degrade' | 'throw';
  readonly codec: JsonCodec;
  readonly events: Emitter<CacheEvents>;
  /** Where sibling groups live: `options.registry`, else the process-wide one. */
  readonly registry: CacheRegistry;
}

/**
 * @internal Validates the rest of the options (in the order the checks always ran, so the same
 * bad input names the same option) and builds the tiers around the chosen store.
 */
export function buildEngine(options: DistributedCacheOptions, b: ValidatedBasics): CacheEngine {
  const local = resolveLocal(options.local);
  const backend = openStore(options, local, b.backendTimeout);
  const store = backend.store;
  // An in-process store is the only tier: memory runs through the same code as Redis, and its
  // fast path (hits read from its entries) lives in the store, not in the cache.
  const inProcess = hasLocalEntries(store);
  const l1 =
    !inProcess && local
      ? new LocalTier(
          local.max ?? DEFAULT_MAX_ENTRIES,
          local.maxBytes ?? DEFAULT_MAX_BYTES,
          local.ttl ?? DEFAULT_LOCAL_TTL,
        )
      : undefined;
  const invalidation =
    options.invalidation === undefined ? true : assertBoolean(options.invalidation, 'invalidation');
  const defaultLock = resolveLock(options.lock, 'lock');
  const meters = meter(options.metrics ?? noopMetrics);
  const circuit = resolveCircuit(options.circuit);
  const remote = new RemoteTier(
    store,
    b.backendTimeout,
    b.onBackendError,
    inProcess ? undefined : circuit,
    { events: b.events, backendErrors: meters.backendErrors, circuitOpens: meters.circuitOpens },
  );
  const engine: CacheEngine = new CacheEngine({
    prefix: b.prefix,
    ttl: b.ttl,
    codec: b.codec,
    meters,
    remote,
    backend,
    inProcess,
    local: l1,
    ttlReader: l1 && hasTtlReader(store) ? store : undefined,
    invalidation: new Invalidation({
      prefix: b.prefix,
      remote,
      bus: invalidation && hasInvalidationBus(store) ? store : undefined,
      local: l1,
      target: store instanceof RedisCacheStore ? store.description : undefined,
      registry: b.registry,
      // Siblings reach this cache through the engine; the registry holds it weakly.
      owner: { dropLocal: (keys) => engine.dropLocal(keys) },
      received: meters.invalidations,
    }),
    flights: new SingleFlight<string | undefined>(meters.joins),
    defaultLock: inProcess ? undefined : defaultLock,
    hot: l1 ? l1.lru : inProcess ? store.entries : undefined,
  });
  return engine;
}

/** The methods every {@link CacheStore} has. */
const STORE_METHODS = [
  'get',
  'getMany',
  'set',
  'setMany',
  'delete',
  'setIfAbsent',
  'deleteIfEquals',
  'ping',
  'close',
];

/**
 * The cache's backend through core's one resolver (`redis`, `store`/`backend`, `connection`/
 * `redisOptions`/`connectTimeout`/`commandTimeout`, same errors and ownership as every module).
 * A connection we create waits on Redis at most `backendTimeout` unless `connection` says
 * otherwise.
 */
function openStore(
  options: DistributedCacheOptions,
  local: LocalCacheOptions | undefined,
  backendTimeout: number,
): ResolvedBackend<CacheStore> {
  return resolveBackend<MemoryCacheStore, RedisCacheStore, CacheStore>(options, {
    module: 'DistributedCache',
    storeName: 'CacheStore',
    memory: () =>
      new MemoryCacheStore({
        ...(local?.max !== undefined ? { max: local.max } : {}),
        ...(local?.maxBytes !== undefined ? { maxBytes: local.maxBytes } : {}),
      }),
    redis: (conn) => new RedisCacheStore(conn),
    validateStore: (x): x is CacheStore => hasMethods(x, STORE_METHODS),
    connection: { connectTimeout: backendTimeout, commandTimeout: backendTimeout },
  });
}

function meter(metrics: MetricsSink): CacheMeters {
  return {
    localHits: metrics.counter('cache_hits_total', { tier: 'local' }),
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
}
