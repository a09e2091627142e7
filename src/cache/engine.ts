import type { ResolvedBackend } from '../core/backend.js';
import type { JsonCodec } from '../core/codec.js';
import { ClosedError, ValidationError, describeValue } from '../core/errors.js';
import { type CounterHandle, type HistogramHandle, secondsSince } from '../core/metrics.js';
import { assertDuration } from '../core/timers.js';
import type { CachedTarget } from './internal.js';
import type { Invalidation } from './invalidation.js';
import type { LocalTier } from './local-tier.js';
import { lockedLoad } from './lock.js';
import { type ResolvedLock, resolveLock } from './options.js';
import type { Budget, RemoteTier } from './remote-tier.js';
import type { SingleFlight } from './single-flight.js';
import type { CacheStore, CacheTtlReader, LocalEntry } from './store.js';
import type { LRUCache } from 'lru-cache';

/** @internal The cache's counters and histograms, looked up once. */
export interface CacheMeters {
  localHits: CounterHandle;
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
}

/** @internal The parts an engine is built from (see `DistributedCache`'s constructor). */
export interface EngineParts {
  readonly prefix: string;
  readonly ttl: number;
  readonly codec: JsonCodec;
  readonly meters: CacheMeters;
  readonly remote: RemoteTier;
  /** The resolved backend: closing it closes what we created, never a store passed in. */
  readonly backend: ResolvedBackend<CacheStore>;
  /** The store is in process (see `CacheLocalEntries`): a lock adds nothing there. */
  readonly inProcess: boolean;
  readonly local: LocalTier | undefined;
  /** With an L1 and a store that reports TTLs: reads fetch the remaining TTL in the same trip. */
  readonly ttlReader: (CacheStore & CacheTtlReader) | undefined;
  readonly invalidation: Invalidation;
  readonly flights: SingleFlight<string | undefined>;
  readonly defaultLock: ResolvedLock | undefined;
  readonly hot: LRUCache<string, LocalEntry> | undefined;
}

/**
 * @internal How the tiers work together: reads that fill L1 without racing writes, writes that
 * invalidate, single-flight loads (under a lock when asked). The public class validates and
 * traces; this does the work. It is also the {@link CachedTarget} that `cached` sees.
 */
export class CacheEngine implements CachedTarget {
  readonly prefix: string;
  readonly ttl: number;
  readonly codec: JsonCodec;
  readonly m: CacheMeters;
  readonly localHits: CounterHandle;
  readonly remote: RemoteTier;
  readonly backend: ResolvedBackend<CacheStore>;
  readonly store: CacheStore;
  readonly local: LocalTier | undefined;
  /** The TTL-reporting store, when reads fill an L1. */
  readonly ttlReader: (CacheStore & CacheTtlReader) | undefined;
  readonly invalidation: Invalidation;
  readonly defaultLock: ResolvedLock | undefined;
  hot: LRUCache<string, LocalEntry> | undefined;
  isClosed = false;
  /** False for an in-process store, where single-flight already holds for the whole cluster. */
  private readonly lockable: boolean;
  /** Hits found in the store: `tier="local"` for an in-process store, else `"remote"`. */
  private readonly storeHits: CounterHandle;
  private readonly flights: SingleFlight<string | undefined>;

  constructor(p: EngineParts) {
    this.prefix = p.prefix;
    this.ttl = p.ttl;
    this.codec = p.codec;
    this.m = p.meters;
    this.localHits = p.meters.localHits;
    this.remote = p.remote;
    this.backend = p.backend;
    this.store = p.remote.store;
    this.lockable = !p.inProcess;
    this.storeHits = p.inProcess ? p.meters.localHits : p.meters.remoteHits;
    this.local = p.local;
    this.ttlReader = p.ttlReader;
    this.invalidation = p.invalidation;
    this.flights = p.flights;
    this.defaultLock = p.defaultLock;
    this.hot = p.hot;
  }

  ensureOpen(): void {
    if (this.isClosed) {
      throw new ClosedError('the DistributedCache was closed', {
        context: { backend: this.store.kind },
      });
    }
  }

  ttlOf(ttl: unknown, option = 'ttl'): number {
    return ttl === undefined ? this.ttl : assertDuration(ttl, option);
  }

  lockOf(lock: unknown, option: string): ResolvedLock | undefined {
    const resolved = lock === undefined ? this.defaultLock : resolveLock(lock, option);
    return this.lockable ? resolved : undefined;
  }

  /** Throws unless `value` is a string within `maxValueBytes`. */
  checkValue(value: unknown, what: string): asserts value is string {
    if (typeof value !== 'string') {
      throw new ValidationError(
        `${what} must be a string (use setJSON/getOrSetJSON for other values), received ${describeValue(value)}`,
        { option: what === 'value' ? 'value' : 'loader' },
      );
    }
    this.codec.checkSize(value, what);
  }

  /** Reads `k` (prefixed) below the hot entries: from the store, filling L1. */
  async remoteGet(k: string, b: Budget = this.remote.newBudget()): Promise<string | null> {
    const l1 = this.local;
    if (l1 === undefined) {
      // No in-process tier to fill: no read ordering to track.
      const v = await this.remote.degrade('get', () => this.store.get(k), null, b);
      if (v === null) this.m.misses.inc();
      else this.storeHits.inc();
      return v;
    }
    this.invalidation.ensureSubscribed();
    const s0 = l1.beginRead();
    try {
      const reader = this.ttlReader;
      let v: string | null;
      let ttl = -1;
      if (reader) {
        const r = await this.remote.degrade('get', () => reader.getWithTtl(k), null, b);
        v = r === null ? null : r[0];
        if (r !== null) ttl = r[1];
      } else {
        v = await this.remote.degrade('get', () => this.store.get(k), null, b);
      }
      if (v === null) {
        this.m.misses.inc();
        return null;
      }
      this.m.remoteHits.inc();
      if (l1.mayFill(k, s0)) l1.fill(k, v, ttl);
      return v;
    } finally {
      l1.endRead(s0);
    }
  }

  /** Writes `entries` (prefixed keys) for `ttl` seconds to every tier, then invalidates. */
  async write(
    entries: [string, string][],
    ttl: number,
    b: Budget = this.remote.newBudget(),
  ): Promise<void> {
    const l1 = this.local;
    if (l1 !== undefined) for (const e of entries) l1.stamp(e[0]);
    this.m.sets.inc(entries.length);
    const ok = await this.remote.degrade(
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
    // Also on a dropped write: this process reads its own write back. The tier is cleared
    // when the subscription comes back, so this cannot outlive the outage unnoticed.
    if (l1 !== undefined) l1.putWritten(entries, ttl);
    await this.invalidation.written(
      entries.map((e) => e[0]),
      ok,
      b,
    );
  }

  /** Removes `k` (prefixed) from every tier; true when the store held it. */
  async delete(k: string): Promise<boolean> {
    this.m.deletes.inc();
    this.local?.drop([k]);
    const b = this.remote.newBudget();
    const existed = await this.remote.degrade('delete', () => this.store.delete(k), false, b);
    await this.invalidation.written([k], true, b);
    return existed;
  }

  /**
   * The value of `k` below the hot entries, loading it once per process (per cluster with
   * `lock`) on a miss. A caller that finds no load running reads the store itself (concurrent
   * reads of one tick still share one round trip in the store), so a hit costs what `get`
   * costs; only a miss enters single-flight, where a load started meanwhile is joined.
   */
  async singleFlight(
    k: string,
    ttl: number,
    lock: ResolvedLock | undefined,
    load: () => Promise<string | undefined>,
  ): Promise<string | undefined> {
    const running = this.flights.join(k);
    if (running !== undefined) return running;
    const b = this.remote.newBudget();
    const hit = await this.remoteGet(k, b);
    if (hit !== null) return hit;
    return this.flights.run(k, () =>
      lock ? lockedLoad(this, k, ttl, lock, load, b) : this.loadAndStore(k, ttl, load, b),
    );
  }

  async loadAndStore(
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

  async cachedMiss(
    fullKey: string,
    call: () => unknown,
    ttl: number,
    lock: ResolvedLock | undefined,
  ): Promise<unknown> {
    this.ensureOpen();
    const text = await this.singleFlight(fullKey, ttl, lock, async () => {
      const v = await call();
      // `undefined` has no JSON form: such results are returned but never stored.
      return v === undefined ? undefined : this.codec.encode(v, 'cached result');
    });
    return text === undefined ? undefined : this.codec.decode(text, 'cached result');
  }

  decodeEntry(e: LocalEntry): unknown {
    if (!e.decoded) {
      e.value = this.codec.decode(e.text, 'cached result');
      e.decoded = true;
    }
    return e.value;
  }

  /** Drops `keys` from L1 (a sibling in this process wrote them). */
  dropLocal(keys: readonly string[]): void {
    if (!this.isClosed) this.local?.drop(keys);
  }
}
