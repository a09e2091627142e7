/**
 * azscale/hono: RED metrics middleware, cookie sessions on azscale sessions, and health routes
 * for Hono (on Node through `@hono/node-server`, or any runtime with node:crypto). `hono` is an
 * optional peer dependency: importing this subpath without it fails with a
 * MissingDependencyError naming it.
 * @packageDocumentation
 */
import { assertPeer } from '../frameworks/peer.js';

assertPeer('hono', 'azscale/hono');

export { requestMetrics, type RequestMetricsOptions } from './metrics.js';
export { healthRoutes, type HealthRoutesOptions } from './health.js';
export { honoSession, type HonoSessionMiddleware, type HonoSessionOptions } from './session.js';
export type { HonoContextLike, HonoMiddleware } from './types.js';
export { RED_METRICS, UNMATCHED_ROUTE } from '../frameworks/red.js';
export {
  AzscaleError,
  MissingDependencyError,
  ValidationError,
  isMissingDependencyError,
} from '../core/errors.js';
