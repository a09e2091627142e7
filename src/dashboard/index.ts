/**
 * `azscale/dashboard`: an operations dashboard for the fleet's queues, breakers, limits, spend
 * and scaling advice, served by a plain Node request handler.
 * @packageDocumentation
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from './http.js';
import { createRouter } from './handler.js';
import { type DashboardOptions, resolveOptions } from './options.js';
import { FleetState } from './state.js';

export type { CircuitGuardedLike, DashboardAuth, DashboardOptions, Named } from './options.js';
export type {
  AdvisorView,
  BreakerView,
  FailureView,
  LatencyView,
  LimiterView,
  OverviewView,
  QueueFeatures,
  QueueSample,
  QueueView,
  RateView,
  SectionError,
  SpendView,
  TaskView,
} from './views.js';
export { ACTION_HEADER } from './guard.js';
export { CSP } from './http.js';
export { uiGzipBytes } from './assets.js';
export { LIST_STATUSES, MAX_PAGE, type ListStatus } from './queue-api.js';

/**
 * The dashboard as a Node request handler. Requests outside `basePath` go to `next` when given
 * (Express middleware), else get a 404.
 */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  /** The normalised base path, e.g. `/dashboard` (`''` at the root). */
  readonly basePath: string;
  /** True when `req`'s path is under the base path (for hooks that route by hand, e.g. Fastify). */
  matches(req: IncomingMessage): boolean;
  /** Stops sampling and closes the queues the dashboard opened by name. Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates the dashboard: the UI at `basePath/` and its JSON API under `basePath/api/`.
 *
 * @example
 * // node:http
 * const dash = createDashboard({ queues: [queue], breakers: 'registry', optimizer, readOnly: false, auth: process.env.DASHBOARD_TOKEN });
 * http.createServer((req, res) => dash(req, res, () => app(req, res))).listen(3000);
 * // Express
 * app.use(dash);
 * // Fastify (before body parsing, so actions read their own body)
 * fastify.addHook('onRequest', (req, reply, done) => { if (dash.matches(req.raw)) { reply.hijack(); dash(req.raw, reply.raw) } else done() });
 * @throws ValidationError naming the option when an option is wrong.
 */
export function createDashboard(options: DashboardOptions = {}): DashboardHandler {
  const o = resolveOptions(options);
  const state = new FleetState(o);
  const route = createRouter(o, state);
  let closed = false;

  const split = (req: IncomingMessage): { path: string; search: string } | undefined => {
    // Express rewrites req.url under a mount path; originalUrl keeps the full one.
    const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname !== o.basePath && !pathname.startsWith(`${o.basePath}/`)) return undefined;
    return { path: pathname.slice(o.basePath.length), search: q < 0 ? '' : url.slice(q + 1) };
  };

  const handler = ((req, res, next) => {
    const parts = split(req);
    if (!parts) {
      if (next) next();
      else sendJson(res, 404, { error: { code: 'AZS_NOT_FOUND', message: 'not found' } });
      return;
    }
    if (closed) {
      sendJson(res, 503, { error: { code: 'AZS_CLOSED', message: 'the dashboard is closed' } });
      return;
    }
    if (parts.path === '') {
      // Relative asset and API URLs need the trailing slash.
      res.statusCode = 308;
      res.setHeader('Location', `${o.basePath}/${parts.search ? `?${parts.search}` : ''}`);
      res.end();
      return;
    }
    void route(req, res, parts.path, parts.search);
  }) as DashboardHandler;

  Object.defineProperty(handler, 'basePath', { value: o.basePath, enumerable: true });
  handler.matches = (req) => split(req) !== undefined;
  handler.close = async () => {
    if (closed) return;
    closed = true;
    state.close();
    await Promise.all(o.ownedQueues.map((q) => q.close()));
  };
  return handler;
}
