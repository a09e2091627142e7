import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import type {
  CounterHandle,
  GaugeHandle,
  HistogramHandle,
  Labels,
  MetricsSink,
} from '../core/metrics.js';
import { assertString } from '../core/validate.js';
import { coarseNow, ensureCoarseClock } from './coarse-clock.js';
import { lazyRequire } from '../core/lazy-require.js';
import {
  type CallbackCell,
  type CounterFamily,
  CounterCell,
  type Family,
  GaugeCell,
  type GaugeFamily,
  HistogramCell,
  type HistogramFamily,
  NAME_RE,
  badValue,
  checkLabels,
  seriesKey,
} from './metric-families.js';
import { type ResolvedMetricsOptions, resolveMetricsOptions } from './metrics-options.js';
import { SnapshotWindow } from './metrics-snapshot.js';
import {
  DEFAULT_BYTES_BUCKETS,
  DEFAULT_SECONDS_BUCKETS,
  type GaugeCallback,
  type MetricKind,
  type MetricsEvents,
  type MetricsOptions,
  type MetricsSnapshot,
} from './metrics-types.js';
import {
  type CollectContext,
  collectorOf,
  fastifyRouteHandler,
  nodeHandler,
} from './prometheus.js';
import { WindowedSketch } from './sketch.js';

export {
  DEFAULT_BYTES_BUCKETS,
  DEFAULT_SECONDS_BUCKETS,
  type GaugeCallback,
  type HistogramSummary,
  type MetricKind,
  type MetricsEvents,
  type MetricsOptions,
  type MetricsSnapshot,
} from './metrics-types.js';

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
  private readonly o: ResolvedMetricsOptions;
  private readonly now: () => number;
  /** What the Prometheus collectors need: the gauge bound, and where their errors go. */
  private readonly collect: CollectContext;
  private readonly window: SnapshotWindow;
  /** Stamps histogram observations: the injected clock, else the shared coarse clock. */
  private readonly stamp: () => number;

  constructor(options: MetricsOptions = {}) {
    this.o = resolveMetricsOptions(options);
    this.prefix = this.o.prefix;
    this.promRegistry = this.o.promRegistry;
    this.now = this.o.now;
    this.stamp = this.o.stamp;
    this.collect = {
      gaugeTimeoutMs: this.o.gaugeTimeoutMs,
      collectError: (metric, e) => this.events.emit('collectError', metric, e),
    };
    this.window = new SnapshotWindow({
      now: this.now,
      windowMs: this.o.windowMs,
      slots: this.o.slots,
      mapping: this.o.mapping,
      names: {
        requests: this.fullName(this.o.requestsMetric),
        errors: this.fullName(this.o.errorsMetric),
        latency: this.fullName(this.o.latencyMetric),
        queueDepth: this.o.queueDepthMetric,
        llmRequests: this.fullName(this.o.llmRequestsMetric),
        llmRateLimited: this.fullName(this.o.llmRateLimitedMetric),
      },
      readCallback: (fam, cb) => this.readCallback(fam, cb),
    });
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
      const window = new WindowedSketch(
        this.o.mapping,
        this.o.slots,
        this.o.windowMs / this.o.slots,
      );
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
    const explicit = this.o.recordKinds[name];
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
    return nodeHandler(this);
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
    return fastifyRouteHandler(this);
  }

  /**
   * The figures of the last `window` seconds: latency percentiles, request and error rates, CPU,
   * memory, queue depth (with the history earlier snapshots saw), and a summary of every metric.
   * Synchronous; it is the input of `ScalingAdvisor.assess()`.
   */
  snapshot(): MetricsSnapshot {
    if (this.stamp === coarseNow) ensureCoarseClock();
    return this.window.take(this.families.values());
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
    if (size >= this.o.maxSeries) {
      throw new ValidationError(
        `${fam.name} already holds ${size} label sets (maxSeriesPerMetric=${this.o.maxSeries}); a label with unbounded values (ids, keys) does not belong on a metric`,
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
    const help = this.o.help[base] ?? `azscale ${kind} ${base}`;
    let fam: Family;
    if (kind === 'counter') {
      fam = { kind, name: full, base, help, labelNames, series: new Map() };
    } else if (kind === 'gauge') {
      fam = { kind, name: full, base, help, labelNames, series: new Map(), callbacks: new Map() };
    } else {
      const bounds =
        this.o.bucketsByMetric[base] ??
        (base.endsWith('_bytes') && this.o.buckets === DEFAULT_SECONDS_BUCKETS
          ? DEFAULT_BYTES_BUCKETS
          : this.o.buckets);
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

  private collector(fam: Family) {
    return collectorOf(fam, this.collect);
  }
}
