import type {
  BreakerStateStore,
  RateAdjustment,
  RateCost,
  RatePeekResult,
  RateStore,
  RateTakeResult,
  SemaphoreAcquireResult,
  SemaphoreStore,
  SemaphoreWaiter,
  SharedBreakerView,
  TrialResult,
} from './store.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';

/**
 * In-memory implementations of the resilience store contracts. They define the reference
 * semantics the Redis scripts must match (the contract suite runs against both), and serve
 * in-process sharing: several breakers or rate limiters given the same store instance see one
 * state.
 */

interface BreakerEntry {
  state: 'open' | 'half-open';
  untilMs: number;
  trialOwner?: string;
  trialUntilMs: number;
  generation: number;
}

/**
 * Entries kept after their open period (or trial lease) ended, as the Redis hash is: 10 minutes.
 * A name nobody calls any more is dropped after that.
 */
const BREAKER_LINGER_MS = 600_000;
// Sweep for lapsed entries once the map holds this many more than after the last sweep.
const SWEEP_EVERY = 1024;

/** Shared breaker state held in this process. */
export class MemoryBreakerStore implements BreakerStateStore {
  private readonly entries = new Map<string, BreakerEntry>();
  // One generation counter for every name (and at least the clock): it only has to grow per
  // name, and a store-wide one needs no per-name map that would grow with every name ever used.
  private generation = 0;
  private sweepAt = SWEEP_EVERY;

  /** Names with an open or half-open entry held now (after dropping lapsed ones). */
  get size(): number {
    this.sweep(Date.now());
    return this.entries.size;
  }

  // The entry, unless it lapsed (then it is gone, as the Redis hash expires).
  private get(name: string, now: number): BreakerEntry | undefined {
    const e = this.entries.get(name);
    if (e && this.lapsed(e, now)) {
      this.entries.delete(name);
      return undefined;
    }
    return e;
  }

  private view(name: string, now = Date.now()): SharedBreakerView {
    const e = this.get(name, now);
    if (!e) return { state: 'closed', remainingMs: 0, generation: this.generation };
    return {
      state: e.state,
      remainingMs: e.state === 'open' ? Math.max(0, e.untilMs - now) : 0,
      generation: e.generation,
    };
  }

  private bump(_name: string): number {
    this.generation = Math.max(this.generation + 1, Date.now());
    return this.generation;
  }

  private lapsed(e: BreakerEntry, now: number): boolean {
    const end = e.state === 'open' ? e.untilMs : e.trialUntilMs;
    return end + BREAKER_LINGER_MS <= now;
  }

  private sweep(now: number): void {
    for (const [name, e] of this.entries) if (this.lapsed(e, now)) this.entries.delete(name);
    this.sweepAt = this.entries.size + SWEEP_EVERY;
  }

  async read(name: string): Promise<SharedBreakerView> {
    return this.view(name);
  }

  async open(name: string, openMs: number): Promise<SharedBreakerView> {
    if (this.entries.size >= this.sweepAt) this.sweep(Date.now());
    if (!this.get(name, Date.now())) {
      this.entries.set(name, {
        state: 'open',
        untilMs: Date.now() + openMs,
        trialUntilMs: 0,
        generation: this.bump(name),
      });
    }
    return this.view(name);
  }

  async tryTrial(name: string, owner: string, trialTtlMs: number): Promise<TrialResult> {
    const now = Date.now();
    const e = this.get(name, now);
    if (e?.state === 'half-open' && e.trialOwner === owner && now < e.trialUntilMs) {
      return { granted: true, view: this.view(name, now) };
    }
    if (
      e &&
      ((e.state === 'open' && now >= e.untilMs) ||
        (e.state === 'half-open' && now >= e.trialUntilMs))
    ) {
      e.state = 'half-open';
      e.trialOwner = owner;
      e.trialUntilMs = now + trialTtlMs;
      e.generation = this.bump(name);
      return { granted: true, view: this.view(name, now) };
    }
    return { granted: false, view: this.view(name, now) };
  }

  async settleTrial(
    name: string,
    owner: string,
    success: boolean,
    openMs: number,
  ): Promise<SharedBreakerView> {
    const e = this.get(name, Date.now());
    if (e && e.state === 'half-open' && e.trialOwner === owner) {
      if (success) {
        this.entries.delete(name);
        this.bump(name);
      } else {
        e.state = 'open';
        e.untilMs = Date.now() + openMs;
        e.trialOwner = undefined;
        e.generation = this.bump(name);
      }
    }
    return this.view(name);
  }

  async reset(name: string): Promise<void> {
    if (this.entries.delete(name)) this.bump(name);
  }

  async close(): Promise<void> {}
}

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

/**
 * One GCRA step over the request and token budgets; shared by the memory store and mirrored by
 * the Redis script. `tat` values are theoretical arrival times in ms.
 */
export function gcraStep(
  now: number,
  reqTat: number,
  tokTat: number,
  cost: RateCost,
): { allowed: boolean; retryAfterMs: number; reqTat: number; tokTat: number } {
  let retry = 0;
  let newReq = reqTat;
  let newTok = tokTat;
  if (cost.requestIntervalMs > 0) {
    newReq = Math.max(reqTat, now) + cost.requestIntervalMs;
    if (newReq - now > cost.periodMs) retry = Math.max(retry, newReq - cost.periodMs - now);
  }
  if (cost.tokenIntervalMs > 0 && cost.tokens > 0) {
    newTok = Math.max(tokTat, now) + cost.tokens * cost.tokenIntervalMs;
    if (newTok - now > cost.periodMs) retry = Math.max(retry, newTok - cost.periodMs - now);
  }
  if (retry > 0) return { allowed: false, retryAfterMs: Math.ceil(retry), reqTat, tokTat };
  return { allowed: true, retryAfterMs: 0, reqTat: newReq, tokTat: newTok };
}

/**
 * Slots per sliding window. A call is counted in the slot of its grant time, and a slot counts
 * until all of it has left the window: the counted calls always include every call of the last
 * `periodMs`, so the bound is never exceeded (the price: a slot's calls free up to 1/60 of the
 * window late).
 */
export const WINDOW_SLOTS = 60;

/** Slot width (ms) of a sliding window of `periodMs`. */
function slotWidth(periodMs: number): number {
  return periodMs / WINDOW_SLOTS;
}

/**
 * How long until `cost` more fits under `limit` in a sliding window whose slots hold `slots`
 * (slot index → amount), 0 when it fits now. Shared by the memory store; mirrored by the Redis
 * script.
 */
export function windowWait(
  now: number,
  periodMs: number,
  slots: Map<number, number>,
  cost: number,
  limit: number,
): number {
  const g = slotWidth(periodMs);
  const lo = Math.floor((now - periodMs) / g);
  let used = 0;
  for (const [b, v] of slots) {
    if (b < lo) slots.delete(b);
    else used += v;
  }
  if (used + cost <= limit + 1e-9) return 0;
  let freed = 0;
  for (const b of [...slots.keys()].sort((x, y) => x - y)) {
    freed += slots.get(b) as number;
    // Slot b stops counting once floor((t - period) / g) > b, i.e. at t = (b + 1) g + period.
    if (used - freed + cost <= limit + 1e-9) return Math.max(1, (b + 1) * g + periodMs - now);
  }
  return periodMs;
}

interface RateEntry {
  reqTat: number;
  tokTat: number;
  pausedUntil: number;
  // Sliding window: slot index -> requests / tokens counted in it; the last slot's end + period.
  reqSlots?: Map<number, number>;
  tokSlots?: Map<number, number>;
  windowUntil: number;
}

/** How long (ms) an adjustment id is remembered (as the Redis store's op ids). */
const ADJUST_ID_TTL_MS = 600_000;

/**
 * Rate budgets (GCRA or sliding window) held in this process. A key whose budgets are whole
 * again and whose pause is over holds no information (a fresh entry behaves the same), so such
 * entries are dropped: the map holds the keys used within the last budget period (or pause), not
 * every key ever used.
 */
export class MemoryRateStore implements RateStore {
  private readonly keys = new Map<string, RateEntry>();
  // Adjustment id -> until when it is remembered.
  private readonly adjusted = new Map<string, number>();
  private adjustedSweepAt = SWEEP_EVERY;
  private sweepAt = SWEEP_EVERY;

  /** Keys holding state now (after dropping idle ones). */
  get size(): number {
    this.sweep(Date.now());
    return this.keys.size;
  }

  private sweep(now: number): void {
    for (const [k, e] of this.keys) {
      if (e.reqTat <= now && e.tokTat <= now && e.pausedUntil <= now && e.windowUntil <= now)
        this.keys.delete(k);
    }
    this.sweepAt = this.keys.size + SWEEP_EVERY;
  }

  private entry(key: string, now: number): RateEntry {
    let e = this.keys.get(key);
    if (!e) {
      if (this.keys.size >= this.sweepAt) this.sweep(now);
      e = { reqTat: 0, tokTat: 0, pausedUntil: 0, windowUntil: 0 };
      this.keys.set(key, e);
    }
    return e;
  }

  async take(key: string, cost: RateCost): Promise<RateTakeResult> {
    return this.takeSync(key, cost);
  }

  /** Synchronous form of {@link take} (the in-memory limiter's fast path). */
  takeSync(key: string, cost: RateCost): RateTakeResult {
    const now = Date.now();
    const e = this.entry(key, now);
    if (e.pausedUntil > now) return { allowed: false, retryAfterMs: e.pausedUntil - now };
    if (cost.mode === 'sliding-window') return this.takeWindow(e, now, cost);
    const r = gcraStep(now, e.reqTat, e.tokTat, cost);
    if (r.allowed) {
      e.reqTat = r.reqTat;
      e.tokTat = r.tokTat;
    }
    return r.allowed ? { allowed: true, retryAfterMs: 0, at: now } : r;
  }

  private takeWindow(e: RateEntry, now: number, cost: RateCost): RateTakeResult {
    const reqLimit = cost.requestLimit ?? 0;
    const tokLimit = cost.tokenLimit ?? 0;
    e.reqSlots ??= new Map();
    e.tokSlots ??= new Map();
    let retry = 0;
    if (reqLimit > 0) retry = windowWait(now, cost.periodMs, e.reqSlots, 1, reqLimit);
    if (tokLimit > 0 && cost.tokens > 0) {
      retry = Math.max(retry, windowWait(now, cost.periodMs, e.tokSlots, cost.tokens, tokLimit));
    }
    if (retry > 0) return { allowed: false, retryAfterMs: Math.ceil(retry) };
    const b = Math.floor(now / slotWidth(cost.periodMs));
    if (reqLimit > 0) e.reqSlots.set(b, (e.reqSlots.get(b) ?? 0) + 1);
    if (tokLimit > 0 && cost.tokens > 0) e.tokSlots.set(b, (e.tokSlots.get(b) ?? 0) + cost.tokens);
    this.counted(e, b, cost.periodMs);
    return { allowed: true, retryAfterMs: 0, at: now };
  }

  private counted(e: RateEntry, slot: number, periodMs: number): void {
    e.windowUntil = Math.max(e.windowUntil, (slot + 1) * slotWidth(periodMs) + periodMs);
  }

  async adjust(key: string, cost: RateCost, adjustment: RateAdjustment): Promise<void> {
    const now = Date.now();
    const { tokens, id } = adjustment;
    if (!Number.isFinite(tokens) || tokens === 0) return;
    if ((this.adjusted.get(id) ?? 0) > now) return;
    if (this.adjusted.size >= this.adjustedSweepAt) {
      for (const [i, until] of this.adjusted) if (until <= now) this.adjusted.delete(i);
      this.adjustedSweepAt = this.adjusted.size + SWEEP_EVERY;
    }
    const e = this.entry(key, now);
    this.adjusted.set(id, now + ADJUST_ID_TTL_MS);
    if (cost.mode === 'sliding-window') {
      if (!cost.tokenLimit) return;
      e.tokSlots ??= new Map();
      const g = slotWidth(cost.periodMs);
      if (tokens > 0) {
        const b = Math.floor(now / g);
        e.tokSlots.set(b, (e.tokSlots.get(b) ?? 0) + tokens);
        this.counted(e, b, cost.periodMs);
        return;
      }
      // A refund goes back to the slot the call was counted in, while that slot still counts.
      const b = Math.floor((adjustment.at ?? now) / g);
      const v = e.tokSlots.get(b);
      if (v !== undefined && b >= Math.floor((now - cost.periodMs) / g)) {
        e.tokSlots.set(b, Math.max(0, v + tokens));
      }
      return;
    }
    if (cost.tokenIntervalMs <= 0) return;
    const shift = tokens * cost.tokenIntervalMs;
    e.tokTat = tokens > 0 ? Math.max(e.tokTat, now) + shift : Math.max(e.tokTat + shift, now);
  }

  async pause(key: string, ms: number): Promise<void> {
    const now = Date.now();
    const e = this.entry(key, now);
    const capped = Math.min(Math.max(0, ms), MAX_DURATION_SECONDS * 1000);
    e.pausedUntil = Math.max(e.pausedUntil, now + (Number.isFinite(capped) ? capped : 0));
  }

  async peek(key: string): Promise<RatePeekResult> {
    const now = Date.now();
    const e = this.keys.get(key);
    if (!e) return { requestAheadMs: 0, tokenAheadMs: 0, pausedForMs: 0 };
    return {
      requestAheadMs: Math.max(0, e.reqTat - now),
      tokenAheadMs: Math.max(0, e.tokTat - now),
      pausedForMs: Math.max(0, e.pausedUntil - now),
    };
  }

  async close(): Promise<void> {}
}
