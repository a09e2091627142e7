import type { LRUCache } from 'lru-cache';
import type { CounterHandle } from '../core/metrics.js';
import type { ResolvedLock } from './options.js';
import type { LocalEntry } from './store.js';

/**
 * @internal The key under which a `DistributedCache` exposes {@link CachedTarget}. Registered
 * with `Symbol.for`, so the ESM and the CJS copy of azscale, when both are loaded, see each
 * other's caches.
 */
export const CACHE_INTERNALS: unique symbol = Symbol.for('azscale.cache.internals.v1') as never;

/**
 * @internal The narrow view of a cache that `cached` works through: its in-process entries for
 * the hit path, and the miss path. Nothing else of the cache is reachable from `cached`.
 */
export interface CachedTarget {
  /** The key prefix. */
  readonly prefix: string;
  /**
   * The entries `cached` may answer hits from: the L1 (shared store with `local`) or the memory
   * store's own entries; `undefined` when there are none or after `close()`.
   */
  readonly hot: LRUCache<string, LocalEntry> | undefined;
  /** True once the cache was closed. */
  readonly isClosed: boolean;
  /** Counts in-process hits. */
  readonly localHits: CounterHandle;
  /** A TTL option (seconds), or the cache's default. */
  ttlOf(ttl: unknown, option?: string): number;
  /** A lock option, or the cache's default. */
  lockOf(lock: unknown, option: string): ResolvedLock | undefined;
  /** Single-flight load of `fullKey` (prefixed), resolving the decoded value. */
  cachedMiss(
    fullKey: string,
    call: () => unknown,
    ttl: number,
    lock: ResolvedLock | undefined,
  ): Promise<unknown>;
  /** Decodes an in-process entry once and keeps the value for later hits. */
  decodeEntry(e: LocalEntry): unknown;
}

/** @internal The {@link CachedTarget} of `v`, when `v` is a cache (of any azscale copy). */
export function targetOf(v: unknown): CachedTarget | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const t = (v as { [CACHE_INTERNALS]?: unknown })[CACHE_INTERNALS];
  return typeof t === 'object' && t !== null ? (t as CachedTarget) : undefined;
}
