import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HealthRoutesOptions, makeProbes } from '../frameworks/probes.js';

export type { HealthRoutesOptions } from '../frameworks/probes.js';

type Next = (err?: unknown) => void;

/**
 * Express middleware answering the probes: `GET /healthz` (liveness), `/readyz` (readiness) and
 * `/startupz` (startup: 503 until the first passing readiness, or your `started()`, then 200).
 * 200 with the JSON report when up, 503 when down; other paths pass through.
 *
 * @example
 * app.use(healthRoutes({ health }));
 */
export function healthRoutes(
  options: HealthRoutesOptions,
): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
  const probes = makeProbes(options);
  return (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const run = probes.run(q === -1 ? url : url.slice(0, q));
    if (run === undefined) return next();
    run.then(({ status, body }) => {
      const text = JSON.stringify(body);
      res.statusCode = status;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('Content-Length', Buffer.byteLength(text));
      res.end(req.method === 'HEAD' ? undefined : text);
    }, next);
  };
}
