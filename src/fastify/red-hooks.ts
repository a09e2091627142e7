/**
 * How `azscalePlugin` records the RED metrics without a Fastify `onResponse` hook. Any
 * `onResponse` hook makes Fastify set up per-request response listeners (two clock reads, a
 * closure, two `finish`/`error` listeners added and removed) and run its hook runner (three
 * closures) on every request; plain Fastify without a logger does none of that. Instead, on an
 * HTTP/1 server, Node's own `http.server.request.start` / `http.server.response.finish`
 * diagnostics channels time each request (one message per event, no listener per request), and
 * the route's template reaches the request through a per-route `onSend` hook (which runs for
 * every reply of the route, early replies of hooks, validation and errors included) and the
 * route's handler (for replies that bypass `onSend`, such as hijacked ones).
 */
import dc from 'node:diagnostics_channel';
import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  RouteHandlerMethod,
  RouteOptions,
} from 'fastify';
import type { MetricsSink } from '../core/metrics.js';
import { UNMATCHED_ROUTE, routeRecorder } from '../frameworks/red.js';

type RouteRecorder = ReturnType<typeof routeRecorder>;

/** `performance.now()` when the HTTP server received the request's headers. */
const STARTED = Symbol('azscale.fastify.started');
/** The recorder of the route that answered the request. */
const ROUTE = Symbol('azscale.fastify.route');
/** Set on an injected request once its finish is watched. */
const WATCHED = Symbol('azscale.fastify.watched');
type Marked = IncomingMessage & {
  [STARTED]?: number;
  [ROUTE]?: RouteRecorder;
  [WATCHED]?: true;
};

interface HttpMessage {
  request: Marked;
  response: ServerResponse;
  server: unknown;
}

const REQUEST_START = 'http.server.request.start';
const RESPONSE_FINISH = 'http.server.response.finish';

/** Adds `hook` to a route's hooks of one kind (a function, an array, or none). */
function withHook<H>(existing: H | H[] | undefined, hook: H): H[] {
  if (existing === undefined) return [hook];
  return [...(Array.isArray(existing) ? existing : [existing]), hook];
}

/**
 * Records `http_requests_total`, `http_request_duration_seconds` and `http_errors_total` for
 * every route registered after this call (not for the paths in `excluded`), and requests no
 * route matched under `unmatched`.
 */
export function registerRedHooks(
  fastify: FastifyInstance,
  metrics: MetricsSink,
  excluded: ReadonlySet<string>,
): void {
  const server: object = fastify.server;
  if (server instanceof HttpServer || server instanceof HttpsServer) {
    registerWithChannels(fastify, server, metrics, excluded);
  } else {
    // HTTP/2 publishes no http.server channels: keep the onResponse hooks.
    registerWithHooks(fastify, metrics, excluded);
  }
}

function registerWithChannels(
  fastify: FastifyInstance,
  server: unknown,
  metrics: MetricsSink,
  excluded: ReadonlySet<string>,
): void {
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (excluded.has(route.url)) return;
    const rec = routeRecorder(metrics, route.url);
    const mark = (
      req: FastifyRequest,
      reply: FastifyReply,
      _payload: unknown,
      done: () => void,
    ) => {
      const raw = req.raw as Marked;
      // A request that did not come through the HTTP server (fastify.inject()) has no start
      // time: time it from here to its finish, so it is still counted.
      if (raw[STARTED] === undefined && raw[WATCHED] === undefined) {
        raw[WATCHED] = true;
        injected(raw, reply.raw, rec);
      }
      raw[ROUTE] = rec;
      done();
    };
    route.onSend = withHook(route.onSend, mark as never);
    const handler = route.handler;
    route.handler = function azscaleRoute(this: unknown, req: FastifyRequest, reply: FastifyReply) {
      (req.raw as Marked)[ROUTE] = rec;
      return (handler as (...a: unknown[]) => unknown).call(this, req, reply);
    } as RouteHandlerMethod;
  });
  const unmatched = routeRecorder(metrics, UNMATCHED_ROUTE);
  const onStart = (message: unknown) => {
    const m = message as HttpMessage;
    if (m.server === server) m.request[STARTED] = performance.now();
  };
  const onFinish = (message: unknown) => {
    const m = message as HttpMessage;
    if (m.server !== server) return;
    const req = m.request;
    const started = req[STARTED];
    if (started === undefined) return;
    const seconds = (performance.now() - started) / 1000;
    const rec = req[ROUTE];
    const status = m.response.statusCode;
    // Unmarked: Fastify's not-found handler (404), or a path this plugin does not count.
    if (rec !== undefined) rec(req.method as string, status, seconds);
    else if (status === 404) unmatched(req.method as string, status, seconds);
  };
  dc.subscribe(REQUEST_START, onStart);
  dc.subscribe(RESPONSE_FINISH, onFinish);
  fastify.addHook('onClose', (_instance: FastifyInstance, done: () => void) => {
    dc.unsubscribe(REQUEST_START, onStart);
    dc.unsubscribe(RESPONSE_FINISH, onFinish);
    done();
  });
}

/** Counts an injected request when its reply finishes. */
function injected(raw: Marked, res: ServerResponse, rec: RouteRecorder): void {
  const t0 = performance.now();
  res.once('finish', () =>
    rec(raw.method as string, res.statusCode, (performance.now() - t0) / 1000),
  );
}

function registerWithHooks(
  fastify: FastifyInstance,
  metrics: MetricsSink,
  excluded: ReadonlySet<string>,
): void {
  // Each route gets its own onResponse hook with its template in a closure (reading
  // request.routeOptions builds an object per request).
  fastify.addHook('onRoute', (route: RouteOptions) => {
    if (excluded.has(route.url)) return;
    const rec = routeRecorder(metrics, route.url);
    const hook = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      rec(req.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    route.onResponse = withHook(route.onResponse, hook as never);
  });
  const unmatched = routeRecorder(metrics, UNMATCHED_ROUTE);
  fastify.addHook('onResponse', (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (req.is404) unmatched(req.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}
