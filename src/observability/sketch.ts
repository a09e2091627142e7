/**
 * Bounded-memory quantile sketches behind `Metrics.histogram()` percentiles.
 *
 * The store is a log-bucketed histogram in the manner of DDSketch (Masson et al., VLDB 2019):
 * a positive value `x` falls in bucket `i = ceil(ln(x) / ln(γ))` with `γ = (1 + α) / (1 − α)`,
 * so bucket `i` covers `(γ^(i−1), γ^i]`, and is reported as `2γ^i / (γ + 1)`. Every value of the
 * bucket is then within a relative error `α` of the reported one. Bucket counts are exact, so the
 * bucket holding the rank-`⌈q·n⌉` observation is found exactly: a quantile estimate is within
 * `α · x` of the exact nearest-rank quantile `x`, for `x` in `[MIN_TRACKED, MAX_TRACKED]`.
 * Values below `MIN_TRACKED` (including 0) are counted as 0; values above `MAX_TRACKED` share the
 * top bucket (their estimate is then clamped by the exact maximum kept alongside).
 *
 * Memory: one counter per bucket actually spanned (the store grows to cover the observed range
 * only), at most `ceil(ln(MAX/MIN) / ln γ) + 1` buckets: 2,440 at α = 1 %, ~10 KB.
 */

/** Smallest value the sketch tells apart from 0. */
export const MIN_TRACKED = 1e-9;
/** Largest value with the relative-error guarantee. */
export const MAX_TRACKED = 1e12;

/** Accuracy parameters shared by all stores of one family (so stores can be merged). */
export class SketchMapping {
  /** Relative accuracy α. */
  readonly alpha: number;
  readonly gamma: number;
  private readonly invLnGamma: number;
  private readonly lnGamma: number;
  /** Lowest and highest bucket index. */
  readonly minIndex: number;
  readonly maxIndex: number;

  constructor(alpha: number) {
    this.alpha = alpha;
    this.gamma = (1 + alpha) / (1 - alpha);
    this.lnGamma = Math.log(this.gamma);
    this.invLnGamma = 1 / this.lnGamma;
    this.minIndex = Math.ceil(Math.log(MIN_TRACKED) * this.invLnGamma);
    this.maxIndex = Math.ceil(Math.log(MAX_TRACKED) * this.invLnGamma);
  }

  /** Bucket index of a value `>= MIN_TRACKED`. */
  index(value: number): number {
    const i = Math.ceil(Math.log(value) * this.invLnGamma);
    return Math.min(this.maxIndex, Math.max(this.minIndex, i));
  }

  /** The value reported for bucket `i`: within α of everything the bucket holds. */
  value(i: number): number {
    return (2 * Math.exp(i * this.lnGamma)) / (this.gamma + 1);
  }
}

/** A growable dense run of bucket counters plus a zero bucket, exact min, max, count and sum. */
export class SketchStore {
  counts: Uint32Array = new Uint32Array(0);
  /** Bucket index of `counts[0]`. */
  offset = 0;
  zero = 0;
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  constructor(private readonly mapping: SketchMapping) {}

  /** Adds one observation (caller guarantees a finite value >= 0). */
  add(value: number): void {
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    if (value < MIN_TRACKED) {
      this.zero++;
      return;
    }
    const i = this.mapping.index(value);
    const rel = i - this.offset;
    if (rel >= 0 && rel < this.counts.length) {
      this.counts[rel]!++;
      return;
    }
    this.grow(i);
    this.counts[i - this.offset]!++;
  }

  private grow(i: number): void {
    const { minIndex, maxIndex } = this.mapping;
    if (this.counts.length === 0) {
      // Start with a run around the first value; most series stay within a few decades.
      const lo = Math.max(minIndex, i - 64);
      const hi = Math.min(maxIndex, i + 64);
      this.counts = new Uint32Array(hi - lo + 1);
      this.offset = lo;
      return;
    }
    const curLo = this.offset;
    const curHi = this.offset + this.counts.length - 1;
    // Grow by at least half the current length so repeated growth stays amortised O(1).
    const slack = Math.max(32, this.counts.length >> 1);
    const lo = i < curLo ? Math.max(minIndex, i - slack) : curLo;
    const hi = i > curHi ? Math.min(maxIndex, i + slack) : curHi;
    const next = new Uint32Array(hi - lo + 1);
    next.set(this.counts, curLo - lo);
    this.counts = next;
    this.offset = lo;
  }

  /** Empties the store, keeping its allocation. */
  clear(): void {
    this.counts.fill(0);
    this.zero = 0;
    this.count = 0;
    this.sum = 0;
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
  }
}

/** Summary statistics of a merged set of stores. */
export interface SketchSummary {
  /** Observations. */
  count: number;
  /** Sum of the observations. */
  sum: number;
  /** Exact smallest and largest observation (NaN when empty). */
  min: number;
  max: number;
  /** Quantile estimates (NaN when empty), one per requested quantile. */
  quantiles: number[];
}

/**
 * Merges `stores` (all built on `mapping`) and estimates each of `qs` (0..1) by nearest rank.
 */
export function summarize(
  mapping: SketchMapping,
  stores: readonly SketchStore[],
  qs: readonly number[],
): SketchSummary {
  let count = 0;
  let sum = 0;
  let zero = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const s of stores) {
    if (s.count === 0) continue;
    count += s.count;
    sum += s.sum;
    zero += s.zero;
    if (s.min < min) min = s.min;
    if (s.max > max) max = s.max;
    if (s.counts.length > 0) {
      if (s.offset < lo) lo = s.offset;
      if (s.offset + s.counts.length - 1 > hi) hi = s.offset + s.counts.length - 1;
    }
  }
  if (count === 0) {
    return {
      count: 0,
      sum: 0,
      min: Number.NaN,
      max: Number.NaN,
      quantiles: qs.map(() => Number.NaN),
    };
  }
  const merged = hi >= lo ? new Float64Array(hi - lo + 1) : new Float64Array(0);
  for (const s of stores) {
    if (s.count === 0) continue;
    const base = s.offset - lo;
    const c = s.counts;
    for (let k = 0; k < c.length; k++) {
      const v = c[k]!;
      if (v !== 0) merged[base + k]! += v;
    }
  }
  const quantiles = qs.map((q) => {
    const rank = Math.max(1, Math.ceil(q * count));
    // The extremes are known exactly.
    if (rank >= count) return max;
    if (rank === 1) return min;
    // Everything in the zero bucket is within MIN_TRACKED of the exact minimum.
    if (rank <= zero) return min;
    let seen = zero;
    for (let k = 0; k < merged.length; k++) {
      seen += merged[k]!;
      if (seen >= rank) {
        const est = mapping.value(lo + k);
        // The exact min and max bound every observation, so clamping only reduces the error.
        return Math.min(max, Math.max(min, est));
      }
    }
    return max;
  });
  return { count, sum, min, max, quantiles };
}

/**
 * A sliding window of stores: `slots` stores of `slotMs` each, rotated by the clock. Percentiles
 * cover the current slot and the `slots − 1` before it, i.e. between `(slots − 1) · slotMs` and
 * `slots · slotMs` of history.
 */
export class WindowedSketch {
  private readonly stores: (SketchStore | undefined)[];
  /** Epoch (slot number) each store holds, or -1. */
  private readonly epochs: Float64Array;
  private cur: SketchStore | undefined;
  /** Time span [curStart, curEnd) of the current slot; an observation outside it rotates. */
  private curStart = 0;
  private curEnd = 0;

  constructor(
    private readonly mapping: SketchMapping,
    private readonly slots: number,
    private readonly slotMs: number,
  ) {
    this.stores = new Array(slots).fill(undefined);
    this.epochs = new Float64Array(slots).fill(-1);
  }

  /** Records `value` at time `nowMs`. */
  add(value: number, nowMs: number): void {
    if (nowMs >= this.curEnd || nowMs < this.curStart) this.rotate(nowMs);
    this.cur!.add(value);
  }

  private rotate(nowMs: number): void {
    const epoch = Math.floor(nowMs / this.slotMs);
    const idx = epoch % this.slots;
    let store = this.stores[idx];
    if (!store) {
      store = new SketchStore(this.mapping);
      this.stores[idx] = store;
    } else if (this.epochs[idx] !== epoch) {
      store.clear();
    }
    this.epochs[idx] = epoch;
    this.cur = store;
    this.curStart = epoch * this.slotMs;
    this.curEnd = this.curStart + this.slotMs;
  }

  /** The stores still inside the window at `nowMs`. */
  live(nowMs: number): SketchStore[] {
    const epoch = Math.floor(nowMs / this.slotMs);
    const out: SketchStore[] = [];
    for (let k = 0; k < this.slots; k++) {
      const e = this.epochs[k]!;
      const s = this.stores[k];
      if (s && e >= 0 && e <= epoch && e > epoch - this.slots) out.push(s);
    }
    return out;
  }
}
