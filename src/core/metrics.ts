/**
 * The observability seam. Every primitive accepts a `metrics` option of this shape and reports to
 * it; the default is {@link noopMetrics}. `azscale/observability`'s `Metrics` implements it and
 * adds Prometheus and OpenTelemetry output.
 *
 * Naming: `<module>_<what>_<unit>` in snake_case, counters end in `_total`, durations are
 * `_seconds`. The sink adds its own prefix (e.g. `azscale_`).
 */

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** A monotonically increasing count. */
export interface CounterHandle {
  /** Adds `value` (default 1; must be >= 0). */
  inc(value?: number): void;
}

/** A distribution of observations (latencies in seconds, sizes in bytes). */
export interface HistogramHandle {
  /** Records one observation. */
  observe(value: number): void;
}

/** A value that goes up and down. */
export interface GaugeHandle {
  /** Sets the value. */
  set(value: number): void;
  /** Adds `value` (default 1). */
  inc(value?: number): void;
  /** Subtracts `value` (default 1). */
  dec(value?: number): void;
}

/**
 * Where primitives report. Handles are looked up once per name and label set and kept, so the
 * hot path is one method call.
 */
export interface MetricsSink {
  /** A counter; `name` should end in `_total`. */
  counter(name: string, labels?: Labels): CounterHandle;
  /** A histogram; `name` should end in its unit (`_seconds`, `_bytes`). */
  histogram(name: string, labels?: Labels): HistogramHandle;
  /** A gauge. */
  gauge(name: string, labels?: Labels): GaugeHandle;
}

const noopCounter: CounterHandle = { inc() {} };
const noopHistogram: HistogramHandle = { observe() {} };
const noopGauge: GaugeHandle = { set() {}, inc() {}, dec() {} };

/** A sink that records nothing: the default of every `metrics` option. */
export const noopMetrics: MetricsSink = Object.freeze({
  counter: () => noopCounter,
  histogram: () => noopHistogram,
  gauge: () => noopGauge,
});

/** Seconds elapsed since a `performance.now()` reading. */
export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}
