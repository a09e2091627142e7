/**
 * The public types of the metrics module: options, the snapshot the advisor reads, events.
 * Kept apart from the implementation so the advisor and adapters can import the shapes alone.
 */
import type { Registry } from 'prom-client';

/** Kinds of metric a {@link Metrics} instance holds. */
export type MetricKind = 'counter' | 'gauge' | 'histogram';

/**
 * Prometheus `le` bucket bounds used for every histogram whose name does not end in `_bytes`,
 * in seconds. They bracket the seed's P95 > 2 s scaling threshold.
 */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60,
]);

/** Prometheus `le` bucket bounds for histograms named `*_bytes`: 64 B to 64 MiB, by 4x. */
export const DEFAULT_BYTES_BUCKETS: readonly number[] = Object.freeze(
  Array.from({ length: 11 }, (_, i) => 64 * 4 ** i),
);

/** A gauge whose value is read when metrics are collected. */
export type GaugeCallback = () => number | Promise<number>;

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /**
   * Prepended to every metric name (not added twice when a name already starts with it).
   * @default 'azscale_'
   */
  prefix?: string;
  /**
   * The prom-client registry the metrics are registered in. By default each instance creates
   * its own `new Registry()` (when first needed): the prom-client global registry is never
   * touched.
   */
  registry?: Registry;
  /**
   * Prometheus `le` bucket bounds (seconds) for histograms not named `*_bytes`.
   * @default DEFAULT_SECONDS_BUCKETS
   */
  buckets?: readonly number[];
  /** Bucket bounds per metric name (unprefixed), overriding `buckets`. @default {} */
  bucketsByMetric?: Readonly<Record<string, readonly number[]>>;
  /**
   * Relative accuracy α of snapshot percentiles: an estimate is within `α · x` of the exact
   * nearest-rank percentile `x` of the observations in the window. Between 0.0001 and 0.1.
   * @default 0.01
   */
  relativeAccuracy?: number;
  /**
   * Length of the sliding window {@link Metrics.snapshot} reports over, in seconds.
   * @default 60
   */
  window?: number;
  /**
   * Number of sub-windows the percentile window is cut into; old observations leave the window
   * one slot at a time (`window / windowSlots` seconds). Integer 2..60.
   * @default 6
   */
  windowSlots?: number;
  /**
   * Seconds an async gauge callback may take during `prometheus()`; a slower one is left out of
   * that scrape (with a `collectError` event carrying a TimeoutError).
   * @default 5
   */
  gaugeTimeout?: number;
  /** HELP text per metric name (unprefixed). @default a generated line */
  help?: Readonly<Record<string, string>>;
  /**
   * Most label sets one metric may hold; a new label set beyond it throws a ValidationError
   * (guards against unbounded cardinality, e.g. a task id used as a label).
   * @default 1000
   */
  maxSeriesPerMetric?: number;
  /** Counter summed for `snapshot().requestRate`. @default 'http_requests_total' */
  requestsMetric?: string;
  /** Counter summed for `snapshot().errorRate`. @default 'http_errors_total' */
  errorsMetric?: string;
  /**
   * Histogram (seconds) behind `snapshot()` latency percentiles.
   * @default 'http_request_duration_seconds'
   */
  latencyMetric?: string;
  /**
   * Gauges summed for `snapshot().queueDepth`: every gauge whose unprefixed name ends with this
   * (so `worker_queue_depth` and `queue_depth` both count).
   * @default 'queue_depth'
   */
  queueDepthMetric?: string;
  /** Counter of LLM calls, for `snapshot().llmRateLimitRate`. @default 'llm_requests_total' */
  llmRequestsMetric?: string;
  /**
   * Counter of LLM calls answered 429, for `snapshot().llmRateLimitRate`.
   * @default 'llm_rate_limited_total'
   */
  llmRateLimitedMetric?: string;
  /**
   * How `record(name, value)` treats a name, overriding the built-in rules (see
   * {@link Metrics.record}).
   * @default {}
   */
  recordKinds?: Readonly<Record<string, MetricKind>>;
  /**
   * Clock in milliseconds since the epoch, for windows and rates. Injectable for tests.
   * @default Date.now
   */
  now?: () => number;
}

/** Percentiles and totals of one histogram over the snapshot window. Values in its unit. */
export interface HistogramSummary {
  /** Observations in the window. */
  count: number;
  /** Sum of the observations in the window. */
  sum: number;
  /** Mean (NaN when empty). */
  mean: number;
  /** Exact smallest observation in the window (NaN when empty). */
  min: number;
  /** Exact largest observation in the window (NaN when empty). */
  max: number;
  /** Median estimate (NaN when empty), within `relativeAccuracy` of the exact value. */
  p50: number;
  /** 95th percentile estimate (NaN when empty), within `relativeAccuracy`. */
  p95: number;
  /** 99th percentile estimate (NaN when empty), within `relativeAccuracy`. */
  p99: number;
}

/**
 * What {@link Metrics.snapshot} returns: the figures `ScalingAdvisor.assess()` reads (the seed's
 * "when to scale" indicators), plus every counter rate, gauge and histogram summary.
 */
export interface MetricsSnapshot {
  /** When the snapshot was taken, milliseconds since the epoch. */
  timestampMs: number;
  /** Seconds the rates cover (up to `window`; less just after start). */
  windowSeconds: number;
  /**
   * Window summary of `latencyMetric`, in seconds (count 0 and NaN figures when nothing was
   * recorded in the window).
   */
  latency: HistogramSummary;
  /**
   * Latency percentiles of `latencyMetric` in seconds (the unit `record('latency', seconds)`
   * takes): the same figures as `latency.p50` / `latency.p95` / `latency.p99`, NaN when nothing
   * was recorded in the window.
   */
  p50: number;
  /** The 95th latency percentile of `latencyMetric` in seconds (NaN when nothing was recorded). */
  p95: number;
  /** The 99th latency percentile of `latencyMetric` in seconds (NaN when nothing was recorded). */
  p99: number;
  /** Latency percentiles of `latencyMetric` in milliseconds; absent when nothing was recorded. */
  p50LatencyMs?: number;
  /** The 95th latency percentile in milliseconds; absent when nothing was recorded. */
  p95LatencyMs?: number;
  /** The 99th latency percentile in milliseconds; absent when nothing was recorded. */
  p99LatencyMs?: number;
  /** `requestsMetric` per second over the window. */
  requestRate: number;
  /** `requestRate` under the seed's HPA metric name (requests per second). */
  httpRequestsPerSecond: number;
  /** Errors / requests over the window, 0..1 (0 when there were no requests). */
  errorRate: number;
  /**
   * Rate-limited (HTTP 429) LLM calls / LLM calls over the window, 0..1; absent when no LLM
   * call was counted in the window.
   */
  llmRateLimitRate?: number;
  /** Process CPU use since the previous snapshot, as a fraction (0..1) of all available cores. */
  cpu: number;
  /** Resident memory as a fraction (0..1) of the container limit, else of total memory. */
  memory: number;
  /** Sum of the queue-depth gauges now (never below 0); absent when no such gauge exists. */
  queueDepth?: number;
  /** Queue depth seen by earlier snapshots inside the window, oldest first, then now. */
  queueDepthHistory: number[];
  /** CPU fractions seen by earlier snapshots inside the window, oldest first, then now. */
  cpuHistory: number[];
  /** Per-second rate of every counter (summed over its label sets), by unprefixed name. */
  rates: Record<string, number>;
  /** Current value of every gauge (summed over its label sets), by unprefixed name. */
  gauges: Record<string, number>;
  /** Window summary of every histogram (merged over its label sets), by unprefixed name. */
  histograms: Record<string, HistogramSummary>;
}

/** Events of {@link Metrics}. */
export type MetricsEvents = {
  /** A gauge callback threw, rejected or gave a non-number while collecting; its series was left out. */
  collectError: (metric: string, error: unknown) => void;
};
