import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { SWEEP_EVERY } from './memory-breaker-store.js';
import { gcraStep, slotWidth, windowWait } from './rate-math.js';
import type {
  RateAdjustment,
  RateCost,
  RatePeekResult,
  RateStore,
  RateTakeResult,
} from './store.js';

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
