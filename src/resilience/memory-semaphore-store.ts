import { SWEEP_EVERY } from './memory-breaker-store.js';
import type { SemaphoreAcquireResult, SemaphoreStore, SemaphoreWaiter } from './store.js';

interface SemaphoreState {
  leases: Map<string, { weight: number; expiresAt: number }>;
  // waiter id -> [arrival number, time last heard from, ms after which it counts as gone]
  line: Map<string, [number, number, number]>;
  seq: number;
}

/** A lease semaphore held in this process (reference semantics of the Redis semaphore). */
export class MemorySemaphoreStore implements SemaphoreStore {
  private readonly sems = new Map<string, SemaphoreState>();
  private sweepAt = SWEEP_EVERY;

  /** Semaphores held now (with a live lease or a waiting process), after dropping idle ones. */
  get size(): number {
    this.sweep(Date.now());
    return this.sems.size;
  }

  // Drops semaphores with no live lease and no process heard from within its stale time, so
  // keys used once do not stay forever.
  private sweep(now: number): void {
    for (const [key, s] of this.sems) {
      for (const [id, l] of s.leases) if (l.expiresAt <= now) s.leases.delete(id);
      for (const [id, [, seen, stale]] of s.line) if (seen <= now - stale) s.line.delete(id);
      if (s.leases.size === 0 && s.line.size === 0) this.sems.delete(key);
    }
    this.sweepAt = this.sems.size + SWEEP_EVERY;
  }

  private live(key: string, now: number): SemaphoreState {
    if (this.sems.size >= this.sweepAt) this.sweep(now);
    let s = this.sems.get(key);
    if (!s) {
      s = { leases: new Map(), line: new Map(), seq: 0 };
      this.sems.set(key, s);
    }
    for (const [id, l] of s.leases) if (l.expiresAt <= now) s.leases.delete(id);
    return s;
  }

  async acquire(
    key: string,
    leaseId: string,
    weight: number,
    limit: number,
    ttlMs: number,
    waiter?: SemaphoreWaiter,
  ): Promise<SemaphoreAcquireResult> {
    const now = Date.now();
    const s = this.live(key, now);
    let used = 0;
    let earliest = Number.POSITIVE_INFINITY;
    for (const l of s.leases.values()) {
      used += l.weight;
      earliest = Math.min(earliest, l.expiresAt);
    }
    if (s.leases.has(leaseId)) return { acquired: true, used, retryHintMs: 0 };
    if (waiter) {
      for (const [id, [, seen]] of s.line) if (seen <= now - waiter.staleMs) s.line.delete(id);
    }
    const free = limit - used;
    const mine = waiter ? s.line.get(waiter.id) : undefined;
    let ahead = 0;
    if (mine) {
      for (const [id, [joined]] of s.line) {
        if (id !== waiter?.id && joined < mine[0]) ahead++;
      }
    } else {
      ahead = s.line.size;
    }
    if (weight <= free && ahead + weight <= free) {
      s.leases.set(leaseId, { weight, expiresAt: now + ttlMs });
      if (waiter) {
        if (waiter.more) s.line.set(waiter.id, [++s.seq, now, waiter.staleMs]);
        else s.line.delete(waiter.id);
      }
      return { acquired: true, used: used + weight, retryHintMs: 0 };
    }
    if (waiter) s.line.set(waiter.id, [mine ? mine[0] : ++s.seq, now, waiter.staleMs]);
    return {
      acquired: false,
      used,
      retryHintMs: Number.isFinite(earliest) ? Math.max(1, earliest - now) : 1,
    };
  }

  async renew(key: string, leaseId: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    const l = this.live(key, now).leases.get(leaseId);
    if (!l) return false;
    l.expiresAt = now + ttlMs;
    return true;
  }

  async release(key: string, leaseId: string): Promise<boolean> {
    const s = this.live(key, Date.now());
    const had = s.leases.delete(leaseId);
    if (s.leases.size === 0 && s.line.size === 0) this.sems.delete(key);
    return had;
  }

  async leave(key: string, waiterId: string): Promise<void> {
    const s = this.sems.get(key);
    if (!s) return;
    s.line.delete(waiterId);
    if (s.leases.size === 0 && s.line.size === 0) this.sems.delete(key);
  }

  async used(key: string): Promise<number> {
    let used = 0;
    for (const l of this.live(key, Date.now()).leases.values()) used += l.weight;
    return used;
  }

  async close(): Promise<void> {}
}
