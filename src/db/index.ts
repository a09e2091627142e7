/**
 * azscale/db: a PostgreSQL router on pg-pool. Writes go to the primary, reads round-robin over
 * healthy replicas, with read-your-writes (`lsn` or `window`), lag-aware skipping, ejection of
 * failing replicas and a limited fallback to the primary. See docs/db.md.
 * @packageDocumentation
 */
export { DatabaseRouter } from './router.js';
export type {
  DatabaseRouterEvents,
  DatabaseRouterStats,
  DbContext,
  DbQueryEvent,
  DbQueryOptions,
  DbRouteReason,
  DbTransactionOptions,
  RoutedQueryResult,
} from './types.js';
export type {
  DatabaseRouterOptions,
  DbNodeAddress,
  DbNodeInput,
  DbPoolOptions,
  ReadYourWrites,
  ReadYourWritesLsn,
  ReadYourWritesWindow,
} from './options.js';
export { dbNodeOf } from './node-info.js';
export type { DbNodeInfo, DbNodeRole, DbNodeStats, DbQuery } from './node-info.js';
export { compareWalLsn, isWalLsn } from './lsn.js';
export { isWriteSql } from './sql.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/db'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  ClosedError,
  LimitExceededError,
  QueryRoutingError,
  TimeoutError,
  ValidationError,
} from '../core/errors.js';
