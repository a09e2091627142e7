import type { LRUCache } from 'lru-cache';
import { type LocalEntry, newEntryLru, putEntry } from './store.js';

/**
 * Most keys stamped while reads are in flight (see {@link LocalTier.stamp}). Past it every
 * running read is treated as stale (it does not fill L1), which is always safe.
 */
const STAMP_LIMIT = 1024;

/**
 * @internal The in-process tier (L1) in front of a shared store, with its race guard.
 *
 * A read from the shared store must not fill L1 with a value older than a write or invalidation
 * of the same key that raced with it. Such events stamp the key with a sequence number while
 * reads are in flight; a read fills L1 only if its key was not stamped after the read began.
 * `stamped` is kept in stamp order and pruned as the oldest read finishes (stamps no running
 * read can see are dropped), and capped at STAMP_LIMIT: it stays small under any load.
 */
export class LocalTier {
  /** The entries; `cached` reads them directly on its hot path. */
  readonly lru: LRUCache<string, LocalEntry>;
  /** Longest life of an entry here, in ms (`local.ttl`). */
  readonly ttlMs: number;
  private seq = 0;
  private resetSeq = 0;
  private readonly stamped = new Map<string, number>();
  /** Sequence number at which reads in flight began -> how many; oldest first. */
  private readonly readStarts = new Map<number, number>();
  private readsInFlight = 0;

  constructor(max: number, maxBytes: number, ttlSeconds: number) {
    this.lru = newEntryLru(max, maxBytes);
    this.ttlMs = Math.max(1, Math.round(ttlSeconds * 1000));
  }

  /** Keeps `text` for at most `remoteMs` (the shared entry's remaining TTL; -1: none). */
  fill(k: string, text: string, remoteMs: number): void {
    putEntry(this.lru, k, text, remoteMs > 0 ? Math.min(this.ttlMs, remoteMs) : this.ttlMs);
  }

  /** Keeps what this process just wrote, for at most its TTL in seconds. */
  putWritten(entries: readonly (readonly [string, string])[], ttl: number): void {
    const ms = Math.min(this.ttlMs, Math.max(1, Math.round(ttl * 1000)));
    for (const [k, v] of entries) putEntry(this.lru, k, v, ms);
  }

  /** Drops `keys` (a write or an invalidation) and stamps them against running reads. */
  drop(keys: Iterable<string>): void {
    for (const k of keys) {
      this.stamp(k);
      this.lru.delete(k);
    }
  }

  /** Drops everything: messages may have been missed (a (re)subscription). */
  reset(): void {
    this.resetSeq = ++this.seq;
    this.lru.clear();
  }

  /** Marks the start of a shared read; pass the result to {@link mayFill} and {@link endRead}. */
  beginRead(): number {
    const s0 = this.seq;
    this.readsInFlight++;
    // seq never decreases, so a new start is never older than those already in the map and
    // the map's insertion order is oldest first.
    this.readStarts.set(s0, (this.readStarts.get(s0) ?? 0) + 1);
    return s0;
  }

  /** Marks the end of a read begun at `s0`. */
  endRead(s0: number): void {
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

  /** True when a read of `k` begun at `s0` may fill L1 (nothing changed `k` since). */
  mayFill(k: string, s0: number): boolean {
    if (this.resetSeq > s0) return false;
    const t = this.stamped.get(k);
    return t === undefined || t <= s0;
  }

  /** Records that `k` changed, so reads begun earlier do not fill L1 with it. */
  stamp(k: string): void {
    this.seq++;
    if (this.readsInFlight === 0) return;
    // Re-inserted so that the map stays in stamp order.
    this.stamped.delete(k);
    if (this.stamped.size >= STAMP_LIMIT) {
      this.resetSeq = this.seq;
      this.stamped.clear();
      return;
    }
    this.stamped.set(k, this.seq);
  }

  /** Size of the stamp map (tests check it stays bounded). */
  get stampCount(): number {
    return this.stamped.size;
  }
}
