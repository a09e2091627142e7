/**
 * azscale/fastify: `azscalePlugin` (RED metrics, health probes, drain and close on `onClose`,
 * the primitives on `fastify.azscale`) and `FastifySessionStore` for `@fastify/session`.
 * `fastify` is an optional peer dependency: importing this subpath without it fails with a
 * MissingDependencyError naming it.
 * @packageDocumentation
 */
import { assertPeer } from '../frameworks/peer.js';

assertPeer('fastify', 'azscale/fastify');

export { azscalePlugin, type AzscaleDecoration, type AzscalePluginOptions } from './plugin.js';
export { FastifySessionStore, type FastifySessionStoreOptions } from './session-store.js';
export { RED_METRICS, UNMATCHED_ROUTE } from '../frameworks/red.js';
export type { Closeable, StoppableWorker } from '../frameworks/lifecycle.js';
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
