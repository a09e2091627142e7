import { type HealthRoutesOptions, makeProbes } from '../frameworks/probes.js';
import type { HonoMiddleware } from './types.js';

export type { HealthRoutesOptions } from '../frameworks/probes.js';

/**
 * Hono middleware answering `GET /healthz`, `/readyz` and `/startupz` from a `HealthRegistry`
 * (200 + JSON report when up, 503 when down); other paths pass through.
 *
 * @example
 * app.use(healthRoutes({ health }));
 */
export function healthRoutes(options: HealthRoutesOptions): HonoMiddleware {
  const probes = makeProbes(options);
  return async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') {
      const run = probes.run(c.req.path);
      if (run !== undefined) {
        const { status, body } = await run;
        return c.body(JSON.stringify(body), status, {
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        });
      }
    }
    await next();
    return undefined;
  };
}
