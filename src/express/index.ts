/**
 * azscale/express: an express-session store on azscale sessions, RED metrics middleware, health
 * routes and graceful shutdown for Express 4/5. `express` is an optional peer dependency:
 * importing this subpath without it fails with a MissingDependencyError naming it.
 * @packageDocumentation
 */
import { assertPeer } from '../frameworks/peer.js';

assertPeer('express', 'azscale/express');

export { ExpressSessionStore, type ExpressSessionStoreOptions } from './session-store.js';
export { requestMetrics, type RequestMetricsOptions } from './metrics.js';
export { healthRoutes, type HealthRoutesOptions } from './health.js';
export {
  gracefulShutdown,
  type Closeable,
  type DrainOptions,
  type GracefulShutdown,
  type GracefulShutdownOptions,
  type ShutdownReport,
  type StoppableWorker,
} from './shutdown.js';
export { RED_METRICS, UNMATCHED_ROUTE } from '../frameworks/red.js';
export type {
  FrameworkSession,
  FrameworkSessionStoreOptions,
} from '../frameworks/session-bridge.js';
export {
  AzscaleError,
  ClosedError,
  MissingDependencyError,
  SerializationError,
  ValidationError,
  isMissingDependencyError,
} from '../core/errors.js';
