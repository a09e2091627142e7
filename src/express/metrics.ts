import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsSink } from '../core/metrics.js';
import { UNMATCHED_ROUTE, redMiddlewareConfig, redRecorder } from '../frameworks/red.js';

/** Options of {@link requestMetrics}. */
export interface RequestMetricsOptions {
  /** Where the RED metrics go: an azscale `Metrics`. */
  metrics: MetricsSink;
  /**
   * Path that serves the Prometheus text of `metrics` (when it has `prometheus()`), or `false`
   * to serve none.
   * @default '/metrics'
   */
  path?: string | false;
  /**
   * Request paths not counted (exact match on the path, query string ignored): probes and
   * scrapes would otherwise dominate the request rate of a quiet service.
   * @default [path, '/healthz', '/readyz', '/startupz']
   */
  exclude?: readonly string[];
}

type Req = IncomingMessage & {
  route?: { path?: unknown };
  baseUrl?: string;
  path?: string;
};
type Next = (err?: unknown) => void;

/** The route template of a finished Express request, never its raw URL. */
function routeOf(req: Req): string {
  const p = req.route?.path;
  if (p === undefined || p === null) return UNMATCHED_ROUTE;
  return `${req.baseUrl ?? ''}${typeof p === 'string' ? p : String(p)}` || '/';
}

/**
 * Express middleware for RED metrics: `http_requests_total{method,route,status}`,
 * `http_request_duration_seconds{method,route,status}` (histogram, seconds) and
 * `http_errors_total{method,route}` for 5xx, which `Metrics.snapshot()` / `ScalingAdvisor` and
 * the HPA's prometheus-adapter rule read. `route` is the matched route template
 * (`/api/task/:id`, with the router's mount path), or `unmatched`. A request the client
 * abandons before the answer counts with status 499. Also serves `GET /metrics`.
 *
 * @example
 * app.use(requestMetrics({ metrics }));
 */
export function requestMetrics(
  options: RequestMetricsOptions,
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const { sink, path, exclude } = redMiddlewareConfig(options);
  const record = redRecorder(sink);
  const serve =
    path !== false && typeof (sink as { handler?: unknown }).handler === 'function'
      ? (
          sink as unknown as { handler(): (req: IncomingMessage, res: ServerResponse) => void }
        ).handler()
      : undefined;
  return (req, res, next) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const p = q === -1 ? url : url.slice(0, q);
    if (serve && p === path && (req.method === 'GET' || req.method === 'HEAD')) {
      serve(req, res);
      return;
    }
    if (exclude.has(p)) {
      next();
      return;
    }
    const t0 = performance.now();
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const status = res.writableFinished ? res.statusCode : 499;
      record(req.method ?? 'GET', routeOf(req as Req), status, (performance.now() - t0) / 1000);
    };
    res.once('finish', finish);
    res.once('close', finish);
    next();
  };
}
