import { describe, expect, it } from 'vitest';
import {
  MAX_TRACKED,
  MIN_TRACKED,
  SketchMapping,
  SketchStore,
  WindowedSketch,
  summarize,
} from '../../src/observability/sketch.js';

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The exact nearest-rank quantile: the value at rank ceil(q·n). */
function exactQuantile(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

const QS = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1];

const distributions: Record<string, (r: () => number) => number> = {
  uniform: (r) => r() * 5,
  // Latency-like: log-normal around 50 ms with a heavy tail.
  lognormal: (r) => {
    const u = Math.max(r(), 1e-12);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
    return 0.05 * Math.exp(1.2 * z);
  },
  exponential: (r) => -Math.log(1 - r()) * 0.2,
  // Bimodal: cache hits in microseconds, misses in tens of milliseconds.
  bimodal: (r) => (r() < 0.9 ? 2e-5 + r() * 1e-5 : 0.02 + r() * 0.03),
  wideRange: (r) => 10 ** (r() * 18 - 9),
};

describe('log-bucket sketch', () => {
  for (const alpha of [0.01, 0.02, 0.001]) {
    for (const [name, gen] of Object.entries(distributions)) {
      it(`${name}: every quantile within α=${alpha} of the exact nearest-rank value`, () => {
        const mapping = new SketchMapping(alpha);
        const store = new SketchStore(mapping);
        const r = rng(42);
        const values: number[] = [];
        for (let i = 0; i < 20_000; i++) {
          const v = gen(r);
          values.push(v);
          store.add(v);
        }
        values.sort((a, b) => a - b);
        const s = summarize(mapping, [store], QS);
        expect(s.count).toBe(values.length);
        expect(s.min).toBe(values[0]);
        expect(s.max).toBe(values[values.length - 1]);
        QS.forEach((q, i) => {
          const exact = exactQuantile(values, q);
          const est = s.quantiles[i]!;
          expect(Math.abs(est - exact)).toBeLessThanOrEqual(alpha * exact + 1e-15);
        });
      });
    }
  }

  it('zeros and sub-nanosecond values are counted as (near) zero', () => {
    const mapping = new SketchMapping(0.01);
    const store = new SketchStore(mapping);
    for (let i = 0; i < 60; i++) store.add(0);
    for (let i = 0; i < 40; i++) store.add(1);
    const s = summarize(mapping, [store], [0.5, 0.6, 0.61, 1]);
    expect(s.quantiles[0]).toBe(0);
    expect(s.quantiles[1]).toBe(0);
    expect(Math.abs(s.quantiles[2]! - 1)).toBeLessThanOrEqual(0.01);
    expect(s.quantiles[3]).toBe(1);
    const tiny = new SketchStore(mapping);
    tiny.add(MIN_TRACKED / 10);
    expect(summarize(mapping, [tiny], [0.5]).quantiles[0]).toBe(MIN_TRACKED / 10);
  });

  it('memory is bounded: extreme values never grow a store past the full index range', () => {
    const mapping = new SketchMapping(0.01);
    const store = new SketchStore(mapping);
    const r = rng(7);
    for (let i = 0; i < 50_000; i++) store.add(10 ** (r() * 40 - 20)); // 1e-20 .. 1e20
    const maxBuckets = mapping.maxIndex - mapping.minIndex + 1;
    expect(store.counts.length).toBeLessThanOrEqual(maxBuckets);
    expect(maxBuckets).toBeLessThan(2500);
    // The extremes are exact even outside the tracked range; values above MAX_TRACKED share
    // the top bucket, so a quantile among them is reported as MAX_TRACKED (within α).
    const s = summarize(mapping, [store], [1, 0.9]);
    expect(s.quantiles[0]).toBe(s.max);
    expect(s.max).toBeGreaterThan(MAX_TRACKED);
    expect(Math.abs(s.quantiles[1]! - MAX_TRACKED)).toBeLessThanOrEqual(0.01 * MAX_TRACKED);
  });

  it('a typical latency series spans a few hundred buckets, not the full range', () => {
    const mapping = new SketchMapping(0.01);
    const store = new SketchStore(mapping);
    const r = rng(3);
    for (let i = 0; i < 10_000; i++) store.add(distributions.lognormal!(r));
    expect(store.counts.length).toBeLessThan(1200);
  });

  it('merging stores gives the same answer as one store with every value', () => {
    const mapping = new SketchMapping(0.01);
    const parts = [new SketchStore(mapping), new SketchStore(mapping), new SketchStore(mapping)];
    const whole = new SketchStore(mapping);
    const r = rng(11);
    for (let i = 0; i < 9000; i++) {
      const v = distributions.lognormal!(r) * (1 + (i % 3) * 10);
      parts[i % 3]!.add(v);
      whole.add(v);
    }
    const a = summarize(mapping, parts, QS);
    const b = summarize(mapping, [whole], QS);
    expect(a.quantiles).toEqual(b.quantiles);
    expect([a.count, a.min, a.max]).toEqual([b.count, b.min, b.max]);
    expect(a.sum).toBeCloseTo(b.sum, 6);
  });

  it('an empty summary reports NaN quantiles and zero count', () => {
    const mapping = new SketchMapping(0.01);
    const s = summarize(mapping, [new SketchStore(mapping)], [0.5]);
    expect(s.count).toBe(0);
    expect(Number.isNaN(s.quantiles[0])).toBe(true);
  });
});

describe('windowed sketch', () => {
  it('observations leave the window slot by slot', () => {
    const mapping = new SketchMapping(0.01);
    const w = new WindowedSketch(mapping, 6, 10_000); // 60 s window in 10 s slots
    const t0 = 1_000_000_000_000;
    for (let i = 0; i < 100; i++) w.add(1, t0); // slot A: value 1
    for (let i = 0; i < 100; i++) w.add(3, t0 + 30_000); // slot D: value 3
    const at = (t: number) => summarize(mapping, w.live(t), [0.5]);
    expect(at(t0 + 30_000).count).toBe(200);
    expect(at(t0 + 59_999).count).toBe(200);
    // 60 s later slot A is out, slot D still in.
    const later = at(t0 + 60_000);
    expect(later.count).toBe(100);
    expect(Math.abs(later.quantiles[0]! - 3)).toBeLessThanOrEqual(0.03);
    expect(at(t0 + 90_000).count).toBe(0);
  });

  it('a reused slot is cleared before it takes new observations', () => {
    const mapping = new SketchMapping(0.01);
    const w = new WindowedSketch(mapping, 3, 1000);
    const t0 = 5_000_000;
    w.add(100, t0);
    w.add(2, t0 + 3000); // same ring index, three slots later
    const s = summarize(mapping, w.live(t0 + 3000), [1]);
    expect(s.count).toBe(1);
    expect(s.max).toBe(2);
  });
});
