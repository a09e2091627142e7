import type { MetricsSink } from '../core/metrics.js';
import { UNMATCHED_ROUTE, redMiddlewareConfig, redRecorder } from '../frameworks/red.js';
import type { HonoContextLike, HonoMiddleware } from './types.js';

/** Options of {@link requestMetrics}. */
export interface RequestMetricsOptions {
  /** Where the RED metrics go: an azscale `Metrics`. */
  metrics: MetricsSink;
  /** Path serving the Prometheus text (when the sink has `prometheus()`), or `false`. @default '/metrics' */
  path?: string | false;
  /** Paths not counted (exact match). @default [path, '/healthz', '/readyz', '/startupz'] */
  exclude?: readonly string[];
}

/** The template of the route that handled the request: the last matched non-middleware route. */
function routeOf(c: HonoContextLike): string {
  const routes = c.req.matchedRoutes ?? [];
  for (let i = routes.length - 1; i >= 0; i--) {
    const r = routes[i]!;
    if (r.method !== 'ALL') return r.path;
  }
  return UNMATCHED_ROUTE;
}

/**
 * Hono middleware for the RED metrics (`http_requests_total{method,route,status}`,
 * `http_request_duration_seconds`, `http_errors_total`) under route templates, and `GET
 * /metrics`. Register it first: `app.use(requestMetrics({ metrics }))`.
 */
export function requestMetrics(options: RequestMetricsOptions): HonoMiddleware {
  const { sink, path, exclude } = redMiddlewareConfig(options);
  const record = redRecorder(sink);
  const prom = sink as unknown as { prometheus?: () => Promise<string>; contentType?: string };
  const serve = path !== false && typeof prom.prometheus === 'function';
  return async (c, next) => {
    const p = c.req.path;
    if (serve && p === path && c.req.method === 'GET') {
      const text = await prom.prometheus!();
      return c.body(text, 200, { 'content-type': prom.contentType ?? 'text/plain; charset=utf-8' });
    }
    if (exclude.has(p)) {
      await next();
      return undefined;
    }
    const t0 = performance.now();
    try {
      await next();
    } finally {
      record(c.req.method, routeOf(c), c.res.status, (performance.now() - t0) / 1000);
    }
    return undefined;
  };
}
