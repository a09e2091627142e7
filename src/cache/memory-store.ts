import type { LRUCache } from 'lru-cache';
import { assertNumber } from '../core/validate.js';
import {
  type CacheLocalEntries,
  type CacheStore,
  type LocalEntry,
  newEntryLru,
  putEntry,
} from './store.js';

/** Options of {@link MemoryCacheStore}. */
export interface MemoryCacheStoreOptions {
  /**
   * Most entries kept; the least recently used go first.
   * @default 10000
   */
  max?: number;
  /**
   * Most bytes kept (strings counted at 2 bytes per UTF-16 code unit, plus a fixed overhead per
   * entry); the least recently used go first, and a larger value is not kept at all.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number;
}

/**
 * In-process {@link CacheStore} on lru-cache: the embedded backend of `DistributedCache` when no
 * `redis` is given. Bounded in entries and in bytes, per-entry TTL, nothing shared between
 * processes.
 */
export class MemoryCacheStore implements CacheStore, CacheLocalEntries {
  readonly kind = 'memory';
  /** The entries, read directly by the cache's hot path (see `CacheLocalEntries`). */
  readonly entries: LRUCache<string, LocalEntry>;

  constructor(options: MemoryCacheStoreOptions = {}) {
    const max =
      options.max === undefined
        ? 10_000
        : assertNumber(options.max, 'local.max', { integer: true, positive: true });
    const maxBytes =
      options.maxBytes === undefined
        ? 64 * 1024 * 1024
        : assertNumber(options.maxBytes, 'local.maxBytes', {
            integer: true,
            positive: true,
            max: Number.MAX_SAFE_INTEGER,
          });
    this.entries = newEntryLru(max, maxBytes);
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.entries.get(key)?.text ?? null);
  }

  getMany(keys: readonly string[]): Promise<(string | null)[]> {
    return Promise.resolve(keys.map((k) => this.entries.get(k)?.text ?? null));
  }

  set(key: string, value: string, ttl: number): Promise<void> {
    putEntry(this.entries, key, value, ttlMs(ttl));
    return Promise.resolve();
  }

  setMany(entries: ReadonlyArray<readonly [string, string]>, ttl: number): Promise<void> {
    const ms = ttlMs(ttl);
    for (const [k, v] of entries) putEntry(this.entries, k, v, ms);
    return Promise.resolve();
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.entries.delete(key));
  }

  setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    if (this.entries.has(key)) return Promise.resolve(false);
    putEntry(this.entries, key, value, ttlMs(ttl));
    return Promise.resolve(true);
  }

  deleteIfEquals(key: string, value: string): Promise<boolean> {
    if (this.entries.get(key)?.text !== value) return Promise.resolve(false);
    return Promise.resolve(this.entries.delete(key));
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.entries.clear();
    return Promise.resolve();
  }
}

/** Seconds to whole milliseconds, at least 1 (a TTL never means "forever"). */
export function ttlMs(ttl: number): number {
  return Math.max(1, Math.round(ttl * 1000));
}
