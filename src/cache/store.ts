import { LRUCache } from 'lru-cache';

/**
 * The backend contract of {@link DistributedCache}. Keys arrive validated and already prefixed;
 * values are strings; TTLs are seconds (> 0, fractions allowed, millisecond precision).
 * A store reports an unreachable server as `BackendUnavailableError`; the cache decides whether
 * that degrades or throws.
 */
export interface CacheStore {
  /** Short backend name for events and errors, e.g. `memory` or `redis`. */
  readonly kind: string;
  /** The value of `key`, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Values of `keys` in their order, `null` for each miss. */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /** Writes `value` for `ttl` seconds. */
  set(key: string, value: string, ttl: number): Promise<void>;
  /** Writes every entry for `ttl` seconds. */
  setMany(entries: ReadonlyArray<readonly [string, string]>, ttl: number): Promise<void>;
  /** Removes `key`; true when it existed. */
  delete(key: string): Promise<boolean>;
  /** Writes `value` only when `key` is absent (a lock); true when written. */
  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean>;
  /** Removes `key` only while it still holds `value` (a lock release); true when removed. */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /** Resolves once the backend answers (connects if needed). */
  ping(): Promise<void>;
  /** Releases what the store created. Idempotent. */
  close(): Promise<void>;
}

/**
 * Optional capability of a shared store: a broadcast channel between cache instances, used to
 * drop keys from the in-process tier of every other instance after a write.
 */
export interface CacheInvalidationBus {
  /** Sends `message` to every subscriber of `channel`. */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribes to `channel`. `onReset` runs after every (re)subscription, when messages may have
   * been missed. Resolves with an unsubscribe function once the first subscription is active.
   */
  subscribe(
    channel: string,
    onMessage: (message: string) => void,
    onReset: () => void,
  ): Promise<() => Promise<void>>;
}

/**
 * Optional capability: reads that also return the remaining time to live, so an in-process copy
 * never outlives the shared entry. Without it, L1 copies live `local.ttl` seconds.
 */
export interface CacheTtlReader {
  /** `[value, remaining ms]` (`-1`: no expiry, `-2`: missing). */
  getWithTtl(key: string): Promise<[value: string | null, ttlMs: number]>;
  /** {@link getWithTtl} for many keys, in their order. */
  getManyWithTtl(keys: readonly string[]): Promise<[value: string | null, ttlMs: number][]>;
}

/**
 * Optional capability of an in-process store (the memory store): its entries, which the cache
 * reads directly for hits, as it reads an L1. Such a store is the only tier: no L1 is put in
 * front of it, its calls need no timeout or circuit (it cannot be unreachable), and a `lock`
 * adds nothing to single-flight (one process is the whole cluster).
 */
export interface CacheLocalEntries {
  /** The entries, bounded and expiring as the store's own. */
  readonly entries: LRUCache<string, LocalEntry>;
}

/** True when `store` also implements {@link CacheLocalEntries}. */
export function hasLocalEntries(store: CacheStore): store is CacheStore & CacheLocalEntries {
  const e = (store as Partial<CacheLocalEntries>).entries;
  return e instanceof LRUCache;
}

/** True when `store` also implements {@link CacheTtlReader}. */
export function hasTtlReader(store: CacheStore): store is CacheStore & CacheTtlReader {
  const s = store as Partial<CacheTtlReader>;
  return typeof s.getWithTtl === 'function' && typeof s.getManyWithTtl === 'function';
}

/** True when `store` also implements {@link CacheInvalidationBus}. */
export function hasInvalidationBus(store: CacheStore): store is CacheStore & CacheInvalidationBus {
  const s = store as Partial<CacheInvalidationBus>;
  return typeof s.publish === 'function' && typeof s.subscribe === 'function';
}

/**
 * One entry of an in-process tier: the stored text and, once somebody asked for it, its decoded
 * value (shared by later hits, so `cached` hits cost no JSON parse). `alive` turns false when the
 * LRU drops it (eviction, delete, overwrite, clear), so a reference kept elsewhere (the `cached`
 * fast path) can tell it is gone; `expiresAt` is its TTL deadline in `performance.now()` ms.
 * @internal
 */
export class LocalEntry {
  value: unknown = undefined;
  decoded = false;
  alive = true;
  hits = 0;
  constructor(
    readonly key: string,
    public text: string,
    readonly expiresAt: number,
  ) {}
}

/** Bytes an entry is counted as beyond its strings: the entry object and the LRU's slots. */
const ENTRY_OVERHEAD = 96;

/** @internal In-memory size of an entry in bytes, as counted against `maxBytes`. */
export function entrySize(e: LocalEntry): number {
  // UTF-16 code units: the strings' in-memory size at worst (V8 stores Latin-1 text in one byte).
  return (e.key.length + e.text.length) * 2 + ENTRY_OVERHEAD;
}

/**
 * @internal An LRU of entries bounded by count and by bytes, that marks each entry dead when it
 * leaves. A dead entry also lets go of its text and decoded value: a reference kept elsewhere
 * (the `cached` fast path) must not keep megabytes alive after the LRU dropped them.
 */
export function newEntryLru(max: number, maxBytes: number): LRUCache<string, LocalEntry> {
  return new LRUCache<string, LocalEntry>({
    max,
    maxSize: maxBytes,
    sizeCalculation: entrySize,
    dispose: (e) => {
      e.alive = false;
      e.text = '';
      e.value = undefined;
      e.decoded = false;
    },
  });
}

/** @internal Stores `text` under `key` for `ttlMs` milliseconds. */
export function putEntry(
  lru: LRUCache<string, LocalEntry>,
  key: string,
  text: string,
  ttlMs: number,
): void {
  lru.set(key, new LocalEntry(key, text, performance.now() + ttlMs), { ttl: ttlMs });
}
