import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MetricsSink } from '../core/metrics.js';
import {
  UNMATCHED_ROUTE,
  assertMetrics,
  redRecorder,
  type RedRecorder,
} from '../frameworks/red.js';
import { common, injectParams } from './nest.js';
import { AZSCALE_METRICS } from './tokens.js';

/** The part of Nest's `ExecutionContext` the interceptor reads. */
interface ContextLike {
  getType(): string;
  switchToHttp(): { getRequest(): unknown; getResponse(): unknown };
}

type NodeReq = IncomingMessage & {
  route?: { path?: unknown };
  baseUrl?: string;
  routeOptions?: { url?: string };
  raw?: IncomingMessage;
};
type NodeRes = ServerResponse & { raw?: ServerResponse };

function routeOf(req: NodeReq): string {
  // Express adapter: the matched route; Fastify adapter: routeOptions.url.
  const p = req.route?.path;
  if (typeof p === 'string') return `${req.baseUrl ?? ''}${p}`;
  if (req.routeOptions?.url) return req.routeOptions.url;
  return UNMATCHED_ROUTE;
}

/**
 * A Nest interceptor recording the RED metrics (`http_requests_total{method,route,status}`,
 * `http_request_duration_seconds`, `http_errors_total`) of every HTTP request it sees, under
 * the route template, on the Express or the Fastify adapter. The status is read when the answer
 * is sent, so exception filters' statuses count. `AzscaleModule` registers it globally when it
 * has `metrics`; otherwise `app.useGlobalInterceptors(new AzscaleMetricsInterceptor(metrics))`.
 */
export class AzscaleMetricsInterceptor {
  private readonly record: RedRecorder;

  constructor(metrics: MetricsSink) {
    this.record = redRecorder(assertMetrics(metrics));
  }

  /** @internal Nest's hook. */
  intercept<T>(context: ContextLike, next: { handle(): T }): T {
    if (context.getType() === 'http') {
      const http = context.switchToHttp();
      const req = http.getRequest() as NodeReq;
      const resp = http.getResponse() as NodeRes;
      const res = (resp.raw ?? resp) as ServerResponse;
      const t0 = performance.now();
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        const status = res.writableFinished ? res.statusCode : 499;
        this.record(req.method ?? 'GET', routeOf(req), status, (performance.now() - t0) / 1000);
      };
      if (typeof res.once === 'function') {
        res.once('finish', finish);
        res.once('close', finish);
      }
    }
    return next.handle();
  }
}
common.Injectable()(AzscaleMetricsInterceptor);
injectParams(AzscaleMetricsInterceptor, [[common.Inject(AZSCALE_METRICS)]]);
