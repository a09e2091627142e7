/**
 * The public types of {@link DatabaseRouter}: the read-your-writes context a caller keeps, the
 * options of its calls, its events and its stats.
 */
import type { QueryResult, QueryResultRow } from 'pg';
import type { DbNodeInfo, DbNodeStats } from './node-info.js';

/**
 * What a caller keeps per user or session (start with `{}`, store it with the session between
 * requests). A write through the router records its position here; a read with it honours that
 * position. Plain JSON: `lsn` is the primary's WAL position after the last write (`lsn` mode),
 * `lastWriteAtMs` the wall-clock time of the last write in epoch milliseconds (`window` mode).
 * Other fields are left alone.
 */
export interface DbContext {
  /** WAL insert position on the primary after this ctx's last write, e.g. `0/3000148`. */
  lsn?: string;
  /**
   * `Date.now()` at this ctx's last write (both modes: in `lsn` mode it ages the position, see
   * {@link ReadYourWritesLsn.maxAge}). A value more than a few seconds in the future is taken
   * as now.
   */
  lastWriteAtMs?: number;
  /**
   * Timeline of the primary that wrote `lsn` (PostgreSQL's timeline ID, 1 until the first
   * promotion). A read whose ctx names another timeline than the primary's now (a promotion
   * happened since) moves the ctx's position to the new primary's: served by the new primary
   * or by a replica that has replayed that far, never pinned to a position of the old timeline.
   */
  timeline?: number;
  [key: string]: unknown;
}

/** Why a statement went to the node it went to. */
export type DbRouteReason =
  /** A write, or a transaction that is not read-only. */
  | 'write'
  /** A read served by a fit replica (round-robin). */
  | 'replica'
  /** A read on the primary because no replicas are configured. */
  | 'no-replicas'
  /** A read on the primary because `ctx`'s last write is not yet replayed on a fit replica. */
  | 'lsn'
  /** A read on the primary because `ctx` wrote within the `window`. */
  | 'window'
  /** A read on the primary because no replica is fit (ejected or lagging); limited. */
  | 'fallback';

/** Payload of the `query` event: which node served a statement, and how it went. */
export interface DbQueryEvent {
  /** The node that served the statement. */
  node: DbNodeInfo;
  /** What was run: a read, a write or a transaction. */
  kind: 'read' | 'write' | 'transaction';
  /** Why it went to that node; see {@link DbRouteReason}. */
  reason: DbRouteReason;
  /** True when this is the second attempt of a read whose first node failed. */
  retry: boolean;
  /** Seconds from the call to the answer, including routing and any wait. */
  duration: number;
  /** False when the statement failed (SQL or connection error). */
  ok: boolean;
  /** The error, when `ok` is false. */
  error?: unknown;
}

/** Events of {@link DatabaseRouter}. `on()` returns a disposer. */
// A type alias, not an interface: Emitter needs an index-signature-compatible map.
export type DatabaseRouterEvents = {
  /** Every statement or transaction, with the node that served it. */
  query: (event: DbQueryEvent) => void;
  /** A replica was taken out of rotation (for the primary: marked unhealthy). */
  eject: (event: { node: DbNodeInfo; error: unknown }) => void;
  /**
   * Writes go to another primary candidate from now on (a promotion was found: the old primary
   * was unreachable or in recovery, and `to` is out of recovery).
   */
  primary: (event: { from: DbNodeInfo; to: DbNodeInfo }) => void;
  /** An ejected node passed its probe and is back. */
  restore: (event: { node: DbNodeInfo }) => void;
  /** A read failed on `from` with a connection error and is being retried on another node. */
  retry: (event: { from: DbNodeInfo; error: unknown }) => void;
};

/** Options of one {@link DatabaseRouter.query} call. */
export interface DbQueryOptions {
  /**
   * `write` (the default: safe) sends the statement to the primary; `read` lets it go to a
   * replica and refuses statements that write.
   * @default 'write'
   */
  role?: 'read' | 'write';
  /** The caller's read-your-writes context. */
  ctx?: DbContext;
}

/** Options of {@link DatabaseRouter.transaction}. */
export interface DbTransactionOptions {
  /**
   * Run as `BEGIN READ ONLY` on a read node (a replica when one is fit for `ctx`).
   * @default false
   */
  readOnly?: boolean;
  /** The caller's read-your-writes context (recorded on commit, honoured by read-only ones). */
  ctx?: DbContext;
  /** Isolation level. @default the server's default (READ COMMITTED) */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
}

/** A pg result with the node that produced it. */
export type RoutedQueryResult<R extends QueryResultRow = QueryResultRow> = QueryResult<R> & {
  /** The node that ran the statement. */
  node: DbNodeInfo;
};

/** What {@link DatabaseRouter.stats} returns. */
export interface DatabaseRouterStats {
  /** The primary node (the candidate writes go to now). */
  primary: DbNodeStats;
  /** Every primary candidate in the order given (`primary`/`primaries`), the current one included. */
  candidates: DbNodeStats[];
  /** The replicas, in the order given. */
  replicas: DbNodeStats[];
  /** The primary first, then the replicas in the order given, then the other candidates. */
  nodes: DbNodeStats[];
  /** Reads the primary serves because no replica is fit, and callers waiting for a slot. */
  fallback: {
    /** Fallback reads running on the primary now. */
    inFlight: number;
    /** Callers waiting for a fallback slot. */
    waiting: number;
    /** Most fallback reads at once (`primaryFallbackLimit`). */
    limit: number;
  };
}
