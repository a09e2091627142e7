/**
 * How a node is named and reported (in events, stats and on errors), and the query forms it
 * takes: the types the router's public API shares with its nodes, and the helpers that attach a
 * node to an error and read it back.
 */
import type { QueryConfig } from 'pg';
import type { DbNodeAddress } from './options.js';

/** Which part a node plays. */
export type DbNodeRole = 'primary' | 'replica';

/** A node as reported in events, stats and on errors; never carries credentials. */
export interface DbNodeInfo extends DbNodeAddress {
  /** `primary`, `replica-0`, `replica-1`, ... (replicas numbered in the order given). */
  name: string;
  /** Whether the node is the primary or a replica. */
  role: DbNodeRole;
}

/** One node in {@link DatabaseRouter.stats}. */
export interface DbNodeStats extends DbNodeInfo {
  /** False while the node is ejected (or its last health check failed, for the primary). */
  healthy: boolean;
  /** Replication lag in seconds at the last health check; `null` when unknown (and for the primary). */
  lag: number | null;
  /** Last known WAL position: replay position of a replica, current position of the primary. */
  lsn: string | null;
  /** Whether the server reported it is in recovery (a standby); `null` before the first check. */
  inRecovery: boolean | null;
  /** Queries running on the node through the router right now. */
  inFlight: number;
  /** Queries the node completed through the router (successful or SQL error). */
  served: number;
  /** Connection failures seen (passive and health checks). */
  failures: number;
  /** Times the node was ejected. */
  ejections: number;
  /** Seconds until an ejected node is probed again; 0 when not ejected. */
  ejectedFor: number;
  /** Message of the last connection failure, if any. */
  lastError: string | null;
  /** The pool's clients: open, idle, and callers waiting for one. */
  pool: {
    /** Clients open (idle or checked out). */
    total: number;
    /** Open clients not in use. */
    idle: number;
    /** Callers waiting for a client. */
    waiting: number;
  };
}

/** A query in either of pg's forms. */
export type DbQuery = string | QueryConfig;

/** Attaches `node` to an error object (SQL errors pass through otherwise unchanged). */
export function attachNode<E>(e: E, node: DbNodeInfo): E {
  if (typeof e === 'object' && e !== null) {
    try {
      (e as { node?: DbNodeInfo }).node = node;
    } catch {
      // A frozen error: pass it through without the node.
    }
  }
  return e;
}

/** The node that served a query that failed, when the router attached it. */
export function dbNodeOf(e: unknown): DbNodeInfo | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const node = (e as { node?: unknown }).node;
  return typeof node === 'object' && node !== null && typeof (node as DbNodeInfo).name === 'string'
    ? (node as DbNodeInfo)
    : undefined;
}
