import type { RateCost } from './store.js';

/** The arithmetic of rate budgets, shared by the memory store and mirrored by the Redis scripts. */

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
export function slotWidth(periodMs: number): number {
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
