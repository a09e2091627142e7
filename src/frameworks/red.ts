import type { CounterHandle, HistogramHandle, MetricsSink } from '../core/metrics.js';
import { ValidationError, describeValue } from '../core/errors.js';

/**
 * Names of the RED metrics (before the `Metrics` prefix, `azscale_` by default). They are the
 * ones `Metrics.snapshot()` (and so `ScalingAdvisor`) and the prometheus-adapter rule behind the
 * HPA's `http_requests_per_second` read.
 */
export const RED_METRICS = Object.freeze({
  /** Counter, labels `method`, `route`, `status`. */
  requests: 'http_requests_total',
  /** Counter of 5xx answers, labels `method`, `route`. */
  errors: 'http_errors_total',
  /** Histogram in seconds, labels `method`, `route`, `status`. */
  latency: 'http_request_duration_seconds',
});

/** The `route` label of a request that matched no route (never its raw URL). */
export const UNMATCHED_ROUTE = 'unmatched';

interface Series {
  requests: CounterHandle;
  latency: HistogramHandle;
  errors: CounterHandle | undefined;
}

/** Records one finished request into the RED metrics; handles are cached per label set. */
export type RedRecorder = (method: string, route: string, status: number, seconds: number) => void;

// Methods outside this set are counted as OTHER: a client can send any token as a method, and
// each would otherwise become a label value (unbounded cardinality).
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/** Checks that `metrics` is a metrics sink (an azscale `Metrics`). */
export function assertMetrics(metrics: unknown, option = 'metrics'): MetricsSink {
  const m = metrics as Partial<MetricsSink> | null | undefined;
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof m.counter !== 'function' ||
    typeof m.histogram !== 'function'
  ) {
    throw new ValidationError(
      `${option} must be an azscale Metrics (or a MetricsSink), received ${describeValue(metrics)}`,
      { option },
    );
  }
  return m as MetricsSink;
}

/** Builds the recorder the framework middlewares share. */
export function redRecorder(metrics: MetricsSink): RedRecorder {
  const cache = new Map<string, Series>();
  return (method, route, status, seconds) => {
    const m = METHODS.has(method) ? method : 'OTHER';
    const key = `${m} ${status} ${route}`;
    let s = cache.get(key);
    if (s === undefined) {
      const st = String(status);
      try {
        s = {
          requests: metrics.counter(RED_METRICS.requests, { method: m, route, status: st }),
          latency: metrics.histogram(RED_METRICS.latency, { method: m, route, status: st }),
          errors:
            status >= 500 ? metrics.counter(RED_METRICS.errors, { method: m, route }) : undefined,
        };
      } catch {
        // Over the sink's series limit (maxSeriesPerMetric): the request itself must not fail
        // for it; the sink has already refused the series and says so in its own error path.
        return;
      }
      cache.set(key, s);
    }
    s.requests.inc();
    s.latency.observe(seconds);
    s.errors?.inc();
  };
}

const METHOD_INDEX = new Map([...METHODS].map((m, i) => [m, i] as const));

/**
 * A recorder for one route, for hooks attached per route (Fastify's onRoute): the label set is
 * found by a number (method and status) instead of a string built per request.
 */
export function routeRecorder(
  metrics: MetricsSink,
  route: string,
): (method: string, status: number, seconds: number) => void {
  const cache = new Map<number, Series | null>();
  // Most requests of a route repeat the previous one's method and status: checking that first
  // skips both map lookups on the hot path.
  let lastMethod = '';
  let lastStatus = -1;
  let last: Series | null = null;
  return (method, status, seconds) => {
    let s: Series | null | undefined;
    if (method === lastMethod && status === lastStatus) {
      s = last;
    } else {
      s = lookup(method, status);
      lastMethod = method;
      lastStatus = status;
      last = s;
    }
    if (s === null) return;
    s.requests.inc();
    s.latency.observe(seconds);
    s.errors?.inc();
  };

  function lookup(method: string, status: number): Series | null {
    const mi = METHOD_INDEX.get(method) ?? METHODS.size;
    const key = status * 16 + mi;
    let s = cache.get(key);
    if (s === undefined) {
      const m = mi === METHODS.size ? 'OTHER' : method;
      const st = String(status);
      try {
        s = {
          requests: metrics.counter(RED_METRICS.requests, { method: m, route, status: st }),
          latency: metrics.histogram(RED_METRICS.latency, { method: m, route, status: st }),
          errors:
            status >= 500 ? metrics.counter(RED_METRICS.errors, { method: m, route }) : undefined,
        };
      } catch {
        // Over the sink's series limit: as in redRecorder, the request must not fail for it.
        s = null;
      }
      cache.set(key, s);
    }
    return s;
  }
}

/** What every framework's `requestMetrics` validates from its options. */
export interface RedMiddlewareConfig {
  /** The metrics sink the RED metrics go to. */
  sink: MetricsSink;
  /** Where `/metrics` is served, or `false` for nowhere. */
  path: string | false;
  /** Paths not counted (the scrape path and the probes unless the options name others). */
  exclude: ReadonlySet<string>;
}

/**
 * Validates the options shared by the framework adapters' `requestMetrics` (`metrics`, `path`,
 * `exclude`): one set of rules and messages for Express, Hono and the rest.
 */
export function redMiddlewareConfig(options: unknown): RedMiddlewareConfig {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const o = options as { metrics?: unknown; path?: unknown; exclude?: unknown };
  const sink = assertMetrics(o.metrics);
  const path = o.path === undefined ? '/metrics' : o.path;
  if (path !== false && (typeof path !== 'string' || !path.startsWith('/'))) {
    throw new ValidationError(
      `path must be a path starting with "/" or false, received ${describeValue(path)}`,
      { option: 'path' },
    );
  }
  if (
    o.exclude !== undefined &&
    (!Array.isArray(o.exclude) || o.exclude.some((x) => typeof x !== 'string'))
  ) {
    throw new ValidationError(
      `exclude must be an array of paths, received ${describeValue(o.exclude)}`,
      { option: 'exclude' },
    );
  }
  const exclude = new Set<string>(
    (o.exclude as string[] | undefined) ?? [
      ...(path ? [path] : []),
      '/healthz',
      '/readyz',
      '/startupz',
    ],
  );
  return { sink, path, exclude };
}
