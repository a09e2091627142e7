import type { IncomingMessage, ServerResponse } from 'node:http';
import { availableParallelism, totalmem } from 'node:os';
import type { Registry } from 'prom-client';
import { TimeoutError, ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import type {
  CounterHandle,
  GaugeHandle,
  HistogramHandle,
  Labels,
  MetricsSink,
} from '../core/metrics.js';
import {
  assertFunction,
  assertNumber,
  assertObject,
  assertSeconds,
  assertString,
} from '../core/validate.js';
import { coarseNow, ensureCoarseClock } from './coarse-clock.js';
import { lazyRequire } from '../core/lazy-require.js';
import { SketchMapping, type SketchSummary, WindowedSketch, summarize } from './sketch.js';

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

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const QUANTILES = [0.5, 0.95, 0.99] as const;

function badValue(metric: string, what: string, value: unknown): ValidationError {
  return new ValidationError(`${metric}: value must be ${what}, received ${describeValue(value)}`, {
    option: 'value',
    context: { metric },
  });
}

class CounterCell implements CounterHandle {
  value = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
  ) {}
  inc(value = 1): void {
    // One comparison pair rejects NaN, negatives and Infinity alike.
    if (!(value >= 0 && value < Number.POSITIVE_INFINITY)) {
      throw badValue(this.metric, 'a finite number >= 0', value);
    }
    this.value += value;
  }
}

class GaugeCell implements GaugeHandle {
  value = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
  ) {}
  set(value: number): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value = value;
  }
  inc(value = 1): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value += value;
  }
  dec(value = 1): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value -= value;
  }
}

interface CallbackCell {
  labels: Labels;
  fn: GaugeCallback;
  /** Last value a callback gave (async callbacks are read by the sync snapshot this way). */
  last: number | undefined;
}

class HistogramCell implements HistogramHandle {
  /** Non-cumulative count per `le` bound; the `+Inf` bucket is `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
    private readonly bounds: Float64Array,
    readonly window: WindowedSketch,
    private readonly now: () => number,
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!(value >= 0 && value < Number.POSITIVE_INFINITY)) {
      throw badValue(this.metric, 'a finite number >= 0', value);
    }
    this.sum += value;
    this.count++;
    const b = this.bounds;
    const n = b.length;
    let i = 0;
    while (i < n && value > b[i]!) i++;
    if (i < n) this.counts[i]!++;
    this.window.add(value, this.now());
  }
}

interface FamilyBase {
  /** Full (prefixed) name. */
  name: string;
  /** Name as given (unprefixed). */
  base: string;
  help: string;
  /** Sorted label names every series of the family carries. */
  labelNames: readonly string[];
}
interface CounterFamily extends FamilyBase {
  kind: 'counter';
  series: Map<string, CounterCell>;
}
interface GaugeFamily extends FamilyBase {
  kind: 'gauge';
  series: Map<string, GaugeCell>;
  callbacks: Map<string, CallbackCell>;
}
interface HistogramFamily extends FamilyBase {
  kind: 'histogram';
  series: Map<string, HistogramCell>;
  bounds: Float64Array;
}
type Family = CounterFamily | GaugeFamily | HistogramFamily;

/** One label/value line as prom-client's registry formats it. */
interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

interface Sample {
  t: number;
  counters: Map<string, number>;
  queueDepth: number | undefined;
  cpu: number | undefined;
}

/**
 * The metrics sink every azscale primitive reports to, with Prometheus output (through
 * prom-client, on a registry of its own), sliding-window percentiles and the snapshot the
 * scaling advisor reads.
 *
 * Handles are cheap to use and meant to be fetched once: `counter()`, `histogram()` and
 * `gauge()` return the same handle for the same name and label set.
 *
 * @example
 * const metrics = new Metrics();
 * const cache = new DistributedCache({ metrics });
 * metrics.record('requests', 1);
 * metrics.record('latency', 0.042);            // seconds
 * http.createServer(metrics.handler()).listen(9464);   // GET -> Prometheus text
 * advisor.assess(metrics.snapshot());
 */
export class Metrics implements MetricsSink {
  /** The name prefix. */
  readonly prefix: string;

  private readonly families = new Map<string, Family>();
  private promRegistry: Registry | undefined;
  private readonly recordCache = new Map<string, (value: number) => void>();
  private readonly events = new Emitter<MetricsEvents>();
  private readonly mapping: SketchMapping;
  private readonly buckets: readonly number[];
  private readonly bucketsByMetric: Readonly<Record<string, readonly number[]>>;
  private readonly help: Readonly<Record<string, string>>;
  private readonly recordKinds: Readonly<Record<string, MetricKind>>;
  private readonly windowMs: number;
  private readonly slots: number;
  private readonly maxSeries: number;
  private readonly gaugeTimeoutMs: number;
  private readonly requestsMetric: string;
  private readonly errorsMetric: string;
  private readonly latencyMetric: string;
  private readonly queueDepthMetric: string;
  private readonly llmRequestsMetric: string;
  private readonly llmRateLimitedMetric: string;
  private readonly now: () => number;
  /** Stamps histogram observations: the injected clock, else the shared coarse clock. */
  private readonly stamp: () => number;
  private samples: Sample[];
  private cpuMark: { at: number; usage: NodeJS.CpuUsage };

  constructor(options: MetricsOptions = {}) {
    assertObject(options, 'options');
    const prefix = options.prefix ?? 'azscale_';
    if (typeof prefix !== 'string' || (prefix !== '' && !NAME_RE.test(prefix))) {
      throw new ValidationError(
        `prefix must be '' or match ${NAME_RE}, received ${describeValue(prefix)}`,
        { option: 'prefix' },
      );
    }
    this.prefix = prefix;
    if (options.registry !== undefined) {
      const r = options.registry as Partial<Registry> | null;
      if (
        typeof r !== 'object' ||
        r === null ||
        typeof r.registerMetric !== 'function' ||
        typeof r.metrics !== 'function'
      ) {
        throw new ValidationError(
          `registry must be a prom-client Registry, received ${describeValue(r)}`,
          { option: 'registry' },
        );
      }
      this.promRegistry = options.registry;
    }
    this.buckets = checkBuckets(options.buckets ?? DEFAULT_SECONDS_BUCKETS, 'buckets');
    const byMetric = assertObject(options.bucketsByMetric ?? {}, 'bucketsByMetric') ?? {};
    for (const [k, v] of Object.entries(byMetric)) checkBuckets(v, `bucketsByMetric.${k}`);
    this.bucketsByMetric = byMetric as Record<string, readonly number[]>;
    const alpha = assertNumber(options.relativeAccuracy ?? 0.01, 'relativeAccuracy', {
      min: 0.0001,
      max: 0.1,
    });
    this.mapping = new SketchMapping(alpha);
    this.windowMs =
      assertNumber(options.window ?? 60, 'window (seconds)', { positive: true }) * 1000;
    this.slots = assertNumber(options.windowSlots ?? 6, 'windowSlots', {
      integer: true,
      min: 2,
      max: 60,
    });
    this.gaugeTimeoutMs = assertSeconds(options.gaugeTimeout ?? 5, 'gaugeTimeout') * 1000;
    this.help = checkStringMap(options.help, 'help');
    const kinds = checkStringMap(options.recordKinds, 'recordKinds');
    for (const [k, v] of Object.entries(kinds)) {
      if (v !== 'counter' && v !== 'gauge' && v !== 'histogram') {
        throw new ValidationError(
          `recordKinds.${k} must be 'counter', 'gauge' or 'histogram', received ${describeValue(v)}`,
          { option: 'recordKinds' },
        );
      }
    }
    this.recordKinds = kinds as Record<string, MetricKind>;
    this.maxSeries = assertNumber(options.maxSeriesPerMetric ?? 1000, 'maxSeriesPerMetric', {
      integer: true,
      min: 1,
    });
    this.requestsMetric = assertString(
      options.requestsMetric ?? 'http_requests_total',
      'requestsMetric',
    );
    this.errorsMetric = assertString(options.errorsMetric ?? 'http_errors_total', 'errorsMetric');
    this.latencyMetric = assertString(
      options.latencyMetric ?? 'http_request_duration_seconds',
      'latencyMetric',
    );
    this.queueDepthMetric = assertString(
      options.queueDepthMetric ?? 'queue_depth',
      'queueDepthMetric',
    );
    this.llmRequestsMetric = assertString(
      options.llmRequestsMetric ?? 'llm_requests_total',
      'llmRequestsMetric',
    );
    this.llmRateLimitedMetric = assertString(
      options.llmRateLimitedMetric ?? 'llm_rate_limited_total',
      'llmRateLimitedMetric',
    );
    // Read Date.now at each call (not once), so test fake timers that replace Date apply.
    this.now = options.now === undefined ? () => Date.now() : assertFunction(options.now, 'now');
    this.stamp = options.now === undefined ? coarseNow : this.now;
    this.samples = [{ t: this.now(), counters: new Map(), queueDepth: undefined, cpu: undefined }];
    this.cpuMark = { at: performance.now(), usage: process.cpuUsage() };
  }

  /**
   * The prom-client registry holding this instance's metrics (the `registry` option, else one of
   * its own). prom-client is loaded on first access, not when azscale is imported: prom-client 15
   * loads `@opentelemetry/api` itself.
   */
  get registry(): Registry {
    if (this.promRegistry === undefined) {
      const prom = lazyRequire<typeof import('prom-client')>('prom-client');
      const registry = new prom.Registry();
      for (const fam of this.families.values()) {
        registry.registerMetric(this.collector(fam) as never);
      }
      this.promRegistry = registry;
    }
    return this.promRegistry;
  }

  /** Content-Type of {@link prometheus}'s output (for the `/metrics` response). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Subscribes to an event; returns a disposer. */
  on<K extends keyof MetricsEvents & string>(event: K, listener: MetricsEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /**
   * A counter handle for `name` and `labels`. `name` should end in `_total`.
   * @throws ValidationError for a malformed name or label, a name already used by another kind,
   *   label names that differ from the first use of `name`, or too many label sets.
   */
  counter(name: string, labels?: Labels): CounterHandle {
    const fam = this.family(name, 'counter', labels) as CounterFamily;
    const [key, norm] = seriesKey(fam, labels);
    let cell = fam.series.get(key);
    if (!cell) {
      this.checkCardinality(fam, fam.series.size);
      cell = new CounterCell(norm, fam.name);
      fam.series.set(key, cell);
    }
    return cell;
  }

  /**
   * A histogram handle for `name` and `labels`; `name` should end in its unit (`_seconds`,
   * `_bytes`). Observations must be finite and >= 0.
   * @throws ValidationError as {@link counter} does.
   */
  histogram(name: string, labels?: Labels): HistogramHandle {
    const fam = this.family(name, 'histogram', labels) as HistogramFamily;
    const [key, norm] = seriesKey(fam, labels);
    let cell = fam.series.get(key);
    if (!cell) {
      this.checkCardinality(fam, fam.series.size);
      const window = new WindowedSketch(this.mapping, this.slots, this.windowMs / this.slots);
      if (this.stamp === coarseNow) ensureCoarseClock();
      cell = new HistogramCell(norm, fam.name, fam.bounds, window, this.stamp);
      fam.series.set(key, cell);
    }
    return cell;
  }

  /**
   * A gauge: `gauge(name, labels?)` returns a settable handle; `gauge(name, fn, labels?)`
   * registers a callback read at every collection (`prometheus()`, `snapshot()`) and returns a
   * disposer that removes it. An async callback is awaited by `prometheus()`; `snapshot()` uses
   * the last value it resolved to.
   *
   * @example
   * metrics.gauge('worker_queue_depth', () => queue.depth());
   */
  gauge(name: string, labels?: Labels): GaugeHandle;
  gauge(name: string, fn: GaugeCallback, labels?: Labels): Disposer;
  gauge(
    name: string,
    labelsOrFn?: Labels | GaugeCallback,
    labels?: Labels,
  ): GaugeHandle | Disposer {
    if (typeof labelsOrFn === 'function') {
      const fam = this.family(name, 'gauge', labels) as GaugeFamily;
      const [key, norm] = seriesKey(fam, labels);
      if (fam.callbacks.has(key) || fam.series.has(key)) {
        throw new ValidationError(`gauge ${fam.name} already has a series with these labels`, {
          option: 'name',
          context: { metric: fam.name },
        });
      }
      this.checkCardinality(fam, fam.series.size + fam.callbacks.size);
      const cell: CallbackCell = { labels: norm, fn: labelsOrFn, last: undefined };
      fam.callbacks.set(key, cell);
      const dispose = () => {
        if (fam.callbacks.get(key) === cell) fam.callbacks.delete(key);
      };
      return Object.assign(dispose, { dispose });
    }
    const fam = this.family(name, 'gauge', labelsOrFn) as GaugeFamily;
    const [key, norm] = seriesKey(fam, labelsOrFn);
    if (fam.callbacks.has(key)) {
      throw new ValidationError(`gauge ${fam.name} has a callback for these labels`, {
        option: 'name',
        context: { metric: fam.name },
      });
    }
    let cell = fam.series.get(key);
    if (!cell) {
      this.checkCardinality(fam, fam.series.size + fam.callbacks.size);
      cell = new GaugeCell(norm, fam.name);
      fam.series.set(key, cell);
    }
    return cell;
  }

  /**
   * The seed's `metrics.record(name, value)`. The kind and Prometheus name follow from `name`:
   * - `'requests'` / `'errors'` -> counters `http_requests_total` / `http_errors_total` (value
   *   added): the requests a service serves, the source of the HPA's `http_requests_per_second`;
   * - `'latency'` -> histogram `http_request_duration_seconds` (value in seconds);
   * - a name ending in `_total` -> counter; in `_seconds` or `_bytes` -> histogram;
   * - anything else -> gauge (value set);
   * - `recordKinds` overrides all of these (the name is then used as given).
   *
   * @example
   * metrics.record('requests', 1); metrics.record('latency', 0.12); metrics.record('errors', 0);
   */
  record(name: string, value: number, labels?: Labels): void {
    const key = labels === undefined ? name : `${name}\u0001${JSON.stringify(labels)}`;
    let fn = this.recordCache.get(key);
    if (fn === undefined) {
      fn = this.resolveRecord(name, labels);
      this.recordCache.set(key, fn);
    }
    fn(value);
  }

  private resolveRecord(name: string, labels: Labels | undefined): (value: number) => void {
    assertString(name, 'name');
    const explicit = this.recordKinds[name];
    let kind: MetricKind;
    let metric = name;
    if (explicit) kind = explicit;
    else if (name === 'requests' || name === 'errors') {
      kind = 'counter';
      metric = `http_${name}_total`;
    } else if (name === 'latency') {
      kind = 'histogram';
      metric = 'http_request_duration_seconds';
    } else if (name.endsWith('_total')) kind = 'counter';
    else if (name.endsWith('_seconds') || name.endsWith('_bytes')) kind = 'histogram';
    else kind = 'gauge';
    if (kind === 'counter') {
      const h = this.counter(metric, labels);
      return (v) => h.inc(v);
    }
    if (kind === 'histogram') {
      const h = this.histogram(metric, labels);
      return (v) => h.observe(v);
    }
    const h = this.gauge(metric, labels);
    return (v) => h.set(v);
  }

  /**
   * The Prometheus text exposition of this instance's registry (and anything else registered in
   * it), through prom-client. Serve it with {@link contentType}.
   */
  async prometheus(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A `node:http` request handler (also an Express handler) answering with {@link prometheus}.
   *
   * @example
   * http.createServer(metrics.handler()).listen(9464);
   * app.get('/metrics', metrics.handler());
   */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      this.prometheus().then(
        (text) => {
          res.statusCode = 200;
          res.setHeader('Content-Type', this.contentType);
          res.end(text);
        },
        (e: unknown) => {
          res.statusCode = 500;
          res.setHeader('Content-Type', 'text/plain; charset=utf-8');
          res.end(`metrics collection failed: ${e instanceof Error ? e.message : String(e)}\n`);
        },
      );
    };
  }

  /**
   * A Fastify route handler answering with {@link prometheus}.
   *
   * @example
   * fastify.get('/metrics', metrics.fastifyHandler());
   */
  fastifyHandler(): (
    request: unknown,
    reply: { type(contentType: string): unknown; send(payload: string): unknown },
  ) => Promise<string> {
    return async (_request, reply) => {
      const text = await this.prometheus();
      reply.type(this.contentType);
      return text;
    };
  }

  /**
   * The figures of the last `window` seconds: latency percentiles, request and error rates, CPU,
   * memory, queue depth (with the history earlier snapshots saw), and a summary of every metric.
   * Synchronous; it is the input of `ScalingAdvisor.assess()`.
   */
  snapshot(): MetricsSnapshot {
    const now = this.now();
    if (this.stamp === coarseNow) ensureCoarseClock();
    const cpu = this.sampleCpu();
    const totals = new Map<string, number>();
    const rates: Record<string, number> = {};
    const gauges: Record<string, number> = {};
    const histograms: Record<string, HistogramSummary> = {};
    let queueDepth: number | undefined;
    let latency: HistogramSummary | undefined;

    // The reference sample: the oldest earlier one still inside the window, else the newest
    // earlier one (snapshots further apart than the window), else the creation baseline.
    const cutoff = now - this.windowMs;
    let ref = this.samples[0]!;
    for (const s of this.samples) {
      if (s.t >= now) break;
      ref = s;
      if (s.t >= cutoff) break;
    }
    const dt = (now - ref.t) / 1000;

    for (const fam of this.families.values()) {
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
          const r = this.readCallback(fam, cb);
          if (r !== undefined) {
            v += r;
            any = true;
          }
        }
        if (!any) continue;
        gauges[fam.base] = v;
        if (fam.base.endsWith(this.queueDepthMetric)) queueDepth = (queueDepth ?? 0) + v;
      } else {
        const stores = [];
        for (const c of fam.series.values()) stores.push(...c.window.live(now));
        const s = toSummary(summarize(this.mapping, stores, QUANTILES));
        histograms[fam.base] = s;
        if (fam.name === this.fullName(this.latencyMetric)) latency = s;
      }
    }

    const requests = this.deltaOf(this.requestsMetric, totals, ref);
    const errors = this.deltaOf(this.errorsMetric, totals, ref);
    const requestRate = dt > 0 ? requests / dt : 0;
    const errorRate = requests > 0 ? Math.min(1, errors / requests) : 0;
    const llmCalls = this.deltaOf(this.llmRequestsMetric, totals, ref);
    const llmLimited = this.deltaOf(this.llmRateLimitedMetric, totals, ref);
    if (queueDepth !== undefined && queueDepth < 0) queueDepth = 0;
    const inWindow = this.samples.filter((s) => s.t >= cutoff && s.t < now);

    this.keepSample({ t: now, counters: totals, queueDepth, cpu });

    const lat = latency ?? toSummary(summarize(this.mapping, [], QUANTILES));
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

  /** Bounds an async gauge callback so one stuck backend cannot hang the whole scrape. */
  private withGaugeTimeout(metric: string, value: number | Promise<number>): Promise<number> {
    if (typeof value === 'number') return Promise.resolve(value);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TimeoutError(`gauge callback ${metric} took over ${this.gaugeTimeoutMs / 1000}s`, {
              context: { metric },
            }),
          ),
        this.gaugeTimeoutMs,
      );
    });
    return Promise.race([Promise.resolve(value), timeout]).finally(() => clearTimeout(timer));
  }

  private deltaOf(base: string, totals: Map<string, number>, ref: Sample): number {
    const name = this.fullName(base);
    const now = totals.get(name);
    if (now === undefined) return 0;
    return Math.max(0, now - (ref.counters.get(name) ?? 0));
  }

  private keepSample(sample: Sample): void {
    const last = this.samples[this.samples.length - 1]!;
    // Keep at most one sample per slot so a caller snapshotting in a loop cannot grow the ring.
    if (sample.t - last.t < this.windowMs / this.slots) return;
    this.samples.push(sample);
    const cutoff = sample.t - this.windowMs;
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

  private readCallback(fam: GaugeFamily, cb: CallbackCell): number | undefined {
    try {
      const r = cb.fn();
      if (typeof r === 'number') {
        cb.last = r;
        return r;
      }
      if (r && typeof (r as Promise<number>).then === 'function') {
        (r as Promise<number>).then(
          (v) => {
            if (typeof v === 'number') cb.last = v;
          },
          (e: unknown) => this.events.emit('collectError', fam.name, e),
        );
        return cb.last;
      }
      this.events.emit('collectError', fam.name, badValue(fam.name, 'a number', r));
    } catch (e) {
      this.events.emit('collectError', fam.name, e);
    }
    return undefined;
  }

  private fullName(name: string): string {
    return name.startsWith(this.prefix) ? name : this.prefix + name;
  }

  private checkCardinality(fam: Family, size: number): void {
    if (size >= this.maxSeries) {
      throw new ValidationError(
        `${fam.name} already holds ${size} label sets (maxSeriesPerMetric=${this.maxSeries}); a label with unbounded values (ids, keys) does not belong on a metric`,
        { option: 'maxSeriesPerMetric', context: { metric: fam.name } },
      );
    }
  }

  private family(name: string, kind: MetricKind, labels: Labels | undefined): Family {
    const full = this.fullName(assertString(name, 'name'));
    const existing = this.families.get(full);
    const labelNames = checkLabels(labels, kind);
    if (existing) {
      if (existing.kind !== kind) {
        throw new ValidationError(`${full} is a ${existing.kind}, not a ${kind}`, {
          option: 'name',
          context: { metric: full },
        });
      }
      if (
        existing.labelNames.length !== labelNames.length ||
        existing.labelNames.some((l, i) => l !== labelNames[i])
      ) {
        throw new ValidationError(
          `${full} has labels [${existing.labelNames.join(', ')}], received [${labelNames.join(', ')}]`,
          { option: 'labels', context: { metric: full } },
        );
      }
      return existing;
    }
    if (!NAME_RE.test(full)) {
      throw new ValidationError(
        `metric name must match ${NAME_RE}, received ${describeValue(name)}`,
        { option: 'name' },
      );
    }
    const base = name.startsWith(this.prefix) ? name.slice(this.prefix.length) : name;
    const help = this.help[base] ?? `azscale ${kind} ${base}`;
    let fam: Family;
    if (kind === 'counter') {
      fam = { kind, name: full, base, help, labelNames, series: new Map() };
    } else if (kind === 'gauge') {
      fam = { kind, name: full, base, help, labelNames, series: new Map(), callbacks: new Map() };
    } else {
      const bounds =
        this.bucketsByMetric[base] ??
        (base.endsWith('_bytes') && this.buckets === DEFAULT_SECONDS_BUCKETS
          ? DEFAULT_BYTES_BUCKETS
          : this.buckets);
      fam = {
        kind,
        name: full,
        base,
        help,
        labelNames,
        series: new Map(),
        bounds: Float64Array.from(bounds),
      };
    }
    try {
      // Without a registry yet, the family is registered when the registry is first needed.
      this.promRegistry?.registerMetric(this.collector(fam) as never);
    } catch (e) {
      throw new ValidationError(`${full} is already registered in the prom-client registry`, {
        option: 'name',
        cause: e,
        context: { metric: full },
      });
    }
    this.families.set(full, fam);
    return fam;
  }

  /** The object prom-client's Registry formats: the shape of its own metric classes. */
  private collector(fam: Family) {
    const get = async () => ({
      name: fam.name,
      help: fam.help,
      type: fam.kind,
      aggregator: 'sum' as const,
      values: await this.promValues(fam),
    });
    return {
      name: fam.name,
      help: fam.help,
      type: fam.kind,
      aggregator: 'sum' as const,
      labelNames: fam.labelNames,
      get,
      reset: () => {
        // prom-client's resetMetrics(): zero every value, keep the handles modules hold.
        if (fam.kind === 'histogram') {
          for (const c of fam.series.values()) {
            c.counts.fill(0);
            c.sum = 0;
            c.count = 0;
          }
        } else for (const c of fam.series.values()) c.value = 0;
      },
    };
  }

  private async promValues(fam: Family): Promise<PromValue[]> {
    if (fam.kind === 'counter') {
      return [...fam.series.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
    }
    if (fam.kind === 'gauge') {
      const out: PromValue[] = [...fam.series.values()].map((c) => ({
        value: c.value,
        labels: { ...c.labels },
      }));
      const cbs = [...fam.callbacks.values()];
      const read = await Promise.all(
        cbs.map(async (cb) => {
          try {
            const v = await this.withGaugeTimeout(fam.name, cb.fn());
            if (typeof v !== 'number' || Number.isNaN(v)) {
              this.events.emit('collectError', fam.name, badValue(fam.name, 'a number', v));
              return undefined;
            }
            cb.last = v;
            return v;
          } catch (e) {
            this.events.emit('collectError', fam.name, e);
            return undefined;
          }
        }),
      );
      cbs.forEach((cb, i) => {
        const v = read[i];
        if (v !== undefined) out.push({ value: v, labels: { ...cb.labels } });
      });
      return out;
    }
    const out: PromValue[] = [];
    const bucketName = `${fam.name}_bucket`;
    for (const c of fam.series.values()) {
      let acc = 0;
      for (let i = 0; i < fam.bounds.length; i++) {
        acc += c.counts[i]!;
        out.push({
          value: acc,
          labels: { ...c.labels, le: fam.bounds[i]! },
          metricName: bucketName,
        });
      }
      out.push({ value: c.count, labels: { ...c.labels, le: '+Inf' }, metricName: bucketName });
      out.push({ value: c.sum, labels: { ...c.labels }, metricName: `${fam.name}_sum` });
      out.push({ value: c.count, labels: { ...c.labels }, metricName: `${fam.name}_count` });
    }
    return out;
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

function checkBuckets(value: unknown, option: string): readonly number[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.some(
      (v, i) => typeof v !== 'number' || !Number.isFinite(v) || (i > 0 && v <= value[i - 1]),
    )
  ) {
    throw new ValidationError(
      `${option} must be a non-empty array of finite, strictly increasing numbers, received ${describeValue(value)}`,
      { option },
    );
  }
  return value as number[];
}

function checkStringMap(value: unknown, option: string): Record<string, string> {
  const obj = assertObject(value ?? {}, option) ?? {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== 'string') {
      throw new ValidationError(`${option}.${k} must be a string, received ${describeValue(v)}`, {
        option,
      });
    }
  }
  return obj as Record<string, string>;
}

function checkLabels(labels: Labels | undefined, kind: MetricKind): string[] {
  if (labels === undefined) return [];
  assertObject(labels, 'labels');
  const names = Object.keys(labels).sort();
  for (const n of names) {
    if (!LABEL_RE.test(n) || n.startsWith('__') || (kind === 'histogram' && n === 'le')) {
      throw new ValidationError(
        `label name ${describeValue(n)} is not allowed (must match ${LABEL_RE}, not start with __${kind === 'histogram' ? ", not be 'le'" : ''})`,
        { option: 'labels' },
      );
    }
    const v = (labels as Record<string, unknown>)[n];
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new ValidationError(`label ${n} must be a string, received ${describeValue(v)}`, {
        option: 'labels',
      });
    }
  }
  return names;
}

/** The series key (label values in label-name order) and the normalized (string) labels. */
function seriesKey(fam: Family, labels: Labels | undefined): [string, Labels] {
  if (fam.labelNames.length === 0) return ['', Object.freeze({})];
  const norm: Record<string, string> = {};
  const parts: string[] = [];
  for (const n of fam.labelNames) {
    const v = String((labels as Record<string, unknown>)[n]);
    norm[n] = v;
    parts.push(v);
  }
  return [parts.join('\u0000'), Object.freeze(norm)];
}

function memoryFraction(): number {
  const total = totalmem();
  const constrained =
    typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : undefined;
  const limit = constrained && constrained > 0 && constrained < total ? constrained : total;
  return Math.min(1, process.memoryUsage.rss() / limit);
}
