import type { PoolClient, QueryResult, QueryResultRow } from 'pg';
import { BackendUnavailableError, TimeoutError } from '../core/errors.js';
import { isPgConnectionError, isPgServerError } from '../core/backend-errors.js';
import { NodeHealth } from './health.js';
import { type DbNodeInfo, type DbNodeStats, type DbQuery, attachNode } from './node-info.js';
import { scrubSqlError } from './pg-error.js';

export type { NodeSettings } from './health.js';

// The insert position, not pg_current_wal_lsn(): with synchronous_commit=off the write position
// can still be short of the commit record a caller just got an answer for.
const CURRENT_LSN_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';
// The timeline is the first 8 hex digits of the WAL file name; pg_walfile_name() refuses to run
// during recovery, hence the CASE (evaluated lazily).
const POSITION_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END AS lsn,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8) END AS wal`;
/** Where a primary stands: its WAL insert position and timeline (both absent in recovery). */
export interface DbPosition {
  inRecovery: boolean;
  lsn: string | undefined;
  timeline: number | undefined;
}

function positionOf(
  row: { in_recovery: boolean; lsn: string | null; wal: string | null } | undefined,
): DbPosition {
  const timeline = row?.wal ? Number.parseInt(row.wal, 16) : Number.NaN;
  return {
    inRecovery: row?.in_recovery === true,
    lsn: row?.lsn ?? undefined,
    timeline: Number.isInteger(timeline) && timeline > 0 ? timeline : undefined,
  };
}

/**
 * One PostgreSQL server behind the router: its pool ({@link NodePool}), its health
 * ({@link NodeHealth}), and the statements it runs with their counters.
 */
export class DbNode extends NodeHealth {
  /** Queries running on the node through the router right now. */
  inFlight = 0;
  /** Queries the node completed through the router (successful or SQL error). */
  served = 0;

  /**
   * Runs one statement on a borrowed client; the result carries `node`. SQL errors come back
   * with `node` attached; connection errors are recorded against the node and come back as
   * BackendUnavailableError. The hot path: callbacks inside a single promise.
   */
  execute<R extends QueryResultRow>(
    query: DbQuery,
    values: unknown[] | undefined,
    write: boolean,
  ): Promise<QueryResult<R> & { node: DbNodeInfo }> {
    return new Promise((resolve, reject) => {
      this.inFlight++;
      const t0 = performance.now();
      this.acquire(
        (err, client) => {
          if (err || !client) {
            this.inFlight--;
            reject(this.failure(err, write));
            return;
          }
          // Inline callbacks, not named consts: a bundler's keepNames would wrap each named
          // closure in a defineProperty call, per statement.
          try {
            if (typeof query === 'string') {
              client.query<R>(query, values as unknown[], (qErr, result) =>
                this.settle(client, qErr, result, write, t0, resolve, reject),
              );
            } else {
              client.query<R>(values === undefined ? query : { ...query, values }, (qErr, result) =>
                this.settle(client, qErr, result, write, t0, resolve, reject),
              );
            }
          } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            this.settle<R>(client, err, undefined, write, t0, resolve, reject);
          }
        },
        0,
        write,
      );
    });
  }

  /** Ends one statement of {@link DbNode.execute}: releases the client, counts, settles. */
  private settle<R extends QueryResultRow>(
    client: PoolClient,
    qErr: Error | undefined,
    result: QueryResult<R> | undefined,
    write: boolean,
    t0: number,
    resolve: (r: QueryResult<R> & { node: DbNodeInfo }) => void,
    reject: (e: unknown) => void,
  ): void {
    this.inFlight--;
    if (qErr || !result) {
      this.release(client, qErr);
      reject(this.failure(qErr, write));
      return;
    }
    this.release(client);
    this.served++;
    (write ? this.m.writes : this.m.reads).inc();
    this.m.duration.observe((performance.now() - t0) / 1000);
    const routed = result as QueryResult<R> & { node: DbNodeInfo };
    routed.node = this.info;
    resolve(routed);
  }

  /**
   * Runs a write and then reads the primary's WAL insert position on the same client (for `lsn`
   * read-your-writes).
   */
  async executeWithLsn<R extends QueryResultRow>(
    query: DbQuery,
    values: unknown[] | undefined,
  ): Promise<{
    result: QueryResult<R> & { node: DbNodeInfo };
    lsn: string | undefined;
    timeline: number | undefined;
  }> {
    this.inFlight++;
    const t0 = performance.now();
    let client: PoolClient | undefined;
    try {
      client = await this.checkout(true);
      const result = (
        typeof query === 'string'
          ? await client.query<R>(query, values)
          : await client.query<R>(values === undefined ? query : { ...query, values })
      ) as QueryResult<R> & { node: DbNodeInfo };
      let pos: DbPosition | undefined;
      try {
        pos = await this.position(client);
      } catch (e) {
        // The statement went through; only the position is missing. Drop the client and ask on
        // another one, so the caller still gets the result it is owed.
        this.release(client, e);
        client = undefined;
        pos = await this.position().catch(() => undefined);
      }
      if (client) this.release(client);
      client = undefined;
      this.served++;
      this.m.writes.inc();
      this.m.duration.observe((performance.now() - t0) / 1000);
      result.node = this.info;
      return { result, lsn: pos?.lsn, timeline: pos?.timeline };
    } catch (e) {
      if (client) this.release(client, e);
      throw this.failure(e, true);
    } finally {
      this.inFlight--;
    }
  }

  /** The primary's WAL insert position, on `client` or on a freshly borrowed one. */
  async currentLsn(client?: PoolClient): Promise<string | undefined> {
    if (client) {
      const r = await client.query<{ lsn: string }>(CURRENT_LSN_SQL);
      return r.rows[0]?.lsn;
    }
    const c = await this.checkout();
    try {
      const r = await c.query<{ lsn: string }>(CURRENT_LSN_SQL);
      this.release(c);
      return r.rows[0]?.lsn;
    } catch (e) {
      this.release(c, e);
      throw e;
    }
  }

  /**
   * Whether the node is in recovery and, when it is not, its WAL insert position and timeline;
   * on `client` or on a freshly borrowed one.
   */
  async position(client?: PoolClient): Promise<DbPosition> {
    if (client) {
      const r = await client.query<{
        in_recovery: boolean;
        lsn: string | null;
        wal: string | null;
      }>(POSITION_SQL);
      return positionOf(r.rows[0]);
    }
    const c = await this.checkout();
    try {
      const pos = await this.position(c);
      this.release(c);
      return pos;
    } catch (e) {
      this.release(c, e);
      throw e;
    }
  }

  /**
   * Turns an error from this node into what the caller gets, recording it: SQL errors are
   * returned as they are with `node` attached, connection errors are counted against the node.
   */
  failure(e: unknown, write: boolean): unknown {
    if (e instanceof BackendUnavailableError || e instanceof TimeoutError) {
      if (e instanceof BackendUnavailableError) this.recordFailure(e.cause ?? e);
      return e;
    }
    if (isPgServerError(e) && !isPgConnectionError(e)) {
      this.served++;
      (write ? this.m.writes : this.m.reads).inc();
      this.m.sqlErrors.inc();
      return attachNode(scrubSqlError(e), this.info);
    }
    if (isPgConnectionError(e)) {
      this.recordFailure(e);
      return this.unavailable(e);
    }
    // Neither (e.g. a value pg could not serialize): the caller's problem, passed through.
    return attachNode(e, this.info);
  }

  /** A snapshot for {@link DatabaseRouter.stats}. */
  stats(now: number): DbNodeStats {
    return {
      ...this.info,
      healthy: !this.ejected && this.checkOk,
      lag: this.lag,
      lsn: this.lsn,
      inRecovery: this.inRecovery,
      inFlight: this.inFlight,
      served: this.served,
      failures: this.failures,
      ejections: this.ejections,
      ejectedFor: this.ejected ? Math.max(0, (this.ejectedUntil - now) / 1000) : 0,
      lastError: this.lastError,
      pool: {
        total: this.pool.totalCount,
        idle: this.pool.idleCount,
        waiting: this.pool.waitingCount,
      },
    };
  }
}
