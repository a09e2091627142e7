/**
 * The advisor's view of the metrics module: rates over a sliding window (kept as a small ring of
 * earlier counter totals), CPU and memory of the process, and histogram percentiles.
 */
import { availableParallelism, totalmem } from 'node:os';
import { type CallbackCell, type Family, type GaugeFamily, QUANTILES } from './metric-families.js';
import type { HistogramSummary, MetricsSnapshot } from './metrics-types.js';
import { type SketchMapping, type SketchSummary, summarize } from './sketch.js';

interface Sample {
  t: number;
  counters: Map<string, number>;
  queueDepth: number | undefined;
  cpu: number | undefined;
}

/** The full (prefixed) metric names a snapshot derives its headline figures from. */
export interface SnapshotNames {
  requests: string;
  errors: string;
  latency: string;
  /** Matched as a suffix of gauge names: every `*queue_depth` gauge adds to the depth. */
  queueDepth: string;
  llmRequests: string;
  llmRateLimited: string;
}

/** Settings of a {@link SnapshotWindow}. */
export interface SnapshotWindowOptions {
  now: () => number;
  /** Window length, in milliseconds. */
  windowMs: number;
  /** Samples kept per window. */
  slots: number;
  mapping: SketchMapping;
  names: SnapshotNames;
  /** Reads a gauge callback synchronously (the last value of an async one). */
  readCallback(fam: GaugeFamily, cb: CallbackCell): number | undefined;
}

/** The ring of earlier samples and the computation of {@link MetricsSnapshot}. */
export class SnapshotWindow {
  private samples: Sample[];
  private cpuMark: { at: number; usage: NodeJS.CpuUsage };

  constructor(private readonly o: SnapshotWindowOptions) {
    this.samples = [{ t: o.now(), counters: new Map(), queueDepth: undefined, cpu: undefined }];
    this.cpuMark = { at: performance.now(), usage: process.cpuUsage() };
  }

  /** The snapshot of `families` now; keeps a sample for later windows. */
  take(families: Iterable<Family>): MetricsSnapshot {
    const { names, mapping } = this.o;
    const now = this.o.now();
    const cpu = this.sampleCpu();
    const totals = new Map<string, number>();
    const rates: Record<string, number> = {};
    const gauges: Record<string, number> = {};
    const histograms: Record<string, HistogramSummary> = {};
    let queueDepth: number | undefined;
    let latency: HistogramSummary | undefined;

    // The reference sample: the oldest earlier one still inside the window, else the newest
    // earlier one (snapshots further apart than the window), else the creation baseline.
    const cutoff = now - this.o.windowMs;
    let ref = this.samples[0]!;
    for (const s of this.samples) {
      if (s.t >= now) break;
      ref = s;
      if (s.t >= cutoff) break;
    }
    const dt = (now - ref.t) / 1000;

    for (const fam of families) {
      if (fam.kind === 'counter') {
        let total = 0;
        for (const c of fam.series.values()) total += c.value;
        totals.set(fam.name, total);
        rates[fam.base] = dt > 0 ? (total - (ref.counters.get(fam.name) ?? 0)) / dt : 0;
      } else if (fam.kind === 'gauge') {
        let v = 0;
        let any = fam.series.size > 0;
        for (const c of fam.series.values()) v += c.value;
        for (const cb of fam.callbacks.values()) {
          const r = this.o.readCallback(fam, cb);
          if (r !== undefined) {
            v += r;
            any = true;
          }
        }
        if (!any) continue;
        gauges[fam.base] = v;
        if (fam.base.endsWith(names.queueDepth)) queueDepth = (queueDepth ?? 0) + v;
      } else {
        const stores = [];
        for (const c of fam.series.values()) stores.push(...c.window.live(now));
        const s = toSummary(summarize(mapping, stores, QUANTILES));
        histograms[fam.base] = s;
        if (fam.name === names.latency) latency = s;
      }
    }

    const delta = (name: string) => {
      const total = totals.get(name);
      return total === undefined ? 0 : Math.max(0, total - (ref.counters.get(name) ?? 0));
    };
    const requests = delta(names.requests);
    const errors = delta(names.errors);
    const requestRate = dt > 0 ? requests / dt : 0;
    const errorRate = requests > 0 ? Math.min(1, errors / requests) : 0;
    const llmCalls = delta(names.llmRequests);
    const llmLimited = delta(names.llmRateLimited);
    if (queueDepth !== undefined && queueDepth < 0) queueDepth = 0;
    const inWindow = this.samples.filter((s) => s.t >= cutoff && s.t < now);

    this.keepSample({ t: now, counters: totals, queueDepth, cpu });

    const lat = latency ?? toSummary(summarize(mapping, [], QUANTILES));
    const snap: MetricsSnapshot = {
      timestampMs: now,
      windowSeconds: dt,
      requestRate,
      httpRequestsPerSecond: requestRate,
      errorRate,
      cpu,
      memory: memoryFraction(),
      queueDepthHistory: [
        ...inWindow.flatMap((s) => (s.queueDepth === undefined ? [] : [s.queueDepth])),
        ...(queueDepth === undefined ? [] : [queueDepth]),
      ],
      cpuHistory: [...inWindow.flatMap((s) => (s.cpu === undefined ? [] : [s.cpu])), cpu],
      latency: lat,
      p50: lat.p50,
      p95: lat.p95,
      p99: lat.p99,
      rates,
      gauges,
      histograms,
    };
    if (queueDepth !== undefined) snap.queueDepth = queueDepth;
    if (llmCalls > 0) snap.llmRateLimitRate = Math.min(1, llmLimited / llmCalls);
    if (latency && latency.count > 0) {
      snap.p50LatencyMs = latency.p50 * 1000;
      snap.p95LatencyMs = latency.p95 * 1000;
      snap.p99LatencyMs = latency.p99 * 1000;
    }
    return snap;
  }

  private keepSample(sample: Sample): void {
    const last = this.samples[this.samples.length - 1]!;
    // Keep at most one sample per slot so a caller snapshotting in a loop cannot grow the ring.
    if (sample.t - last.t < this.o.windowMs / this.o.slots) return;
    this.samples.push(sample);
    const cutoff = sample.t - this.o.windowMs;
    // Drop samples older than the window, keeping the newest one of them as a fallback reference.
    while (this.samples.length > 2 && this.samples[1]!.t < cutoff) this.samples.shift();
  }

  private sampleCpu(): number {
    const at = performance.now();
    const usage = process.cpuUsage();
    const elapsedUs = (at - this.cpuMark.at) * 1000;
    const usedUs =
      usage.user - this.cpuMark.usage.user + (usage.system - this.cpuMark.usage.system);
    this.cpuMark = { at, usage };
    if (elapsedUs <= 0) return 0;
    return Math.min(1, Math.max(0, usedUs / (elapsedUs * availableParallelism())));
  }
}

function toSummary(s: SketchSummary): HistogramSummary {
  return {
    count: s.count,
    sum: s.sum,
    mean: s.count > 0 ? s.sum / s.count : Number.NaN,
    min: s.min,
    max: s.max,
    p50: s.quantiles[0]!,
    p95: s.quantiles[1]!,
    p99: s.quantiles[2]!,
  };
}

function memoryFraction(): number {
  const total = totalmem();
  const constrained =
    typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  const limit = constrained && constrained > 0 && constrained < total ? constrained : total;
  return Math.min(1, process.memoryUsage.rss() / limit);
}
