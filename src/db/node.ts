import type { Pool, PoolClient, PoolConfig, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { BackendUnavailableError, TimeoutError } from '../core/errors.js';
import type { CounterHandle, GaugeHandle, HistogramHandle, MetricsSink } from '../core/metrics.js';
import { isConnectionError, isPoolWaitTimeout, isServerError } from './classify.js';
import { compareWalLsn } from './lsn.js';
import { scrubSqlError } from './pg-error.js';
import { type DbNodeAddress, type DbNodeInput, addressOf, isPgPool } from './options.js';
import { loadPg } from './pg-loader.js';

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

/** What a node needs from the router. */
export interface NodeSettings {
  prePing: boolean;
  prePingAfterMs: number;
  maxFails: number;
  failTimeoutMs: number;
  healthCheckTimeoutMs: number;
  poolConfig: PoolConfig;
  metrics: MetricsSink;
  /** Called when the node is ejected or restored, or a background check fails. */
  onEject(node: DbNode, error: unknown): void;
  onRestore(node: DbNode): void;
  onIdleError(node: DbNode, error: unknown): void;
}

/** A query in either of pg's forms. */
export type DbQuery = string | QueryConfig;

const noop = () => {};

/** When a client was last handed back to its pool (a property: cheaper than a WeakMap lookup). */
const RELEASED_AT = Symbol('azscale.db.releasedAt');
/** The topology generation in which a client was last seen writable (see {@link DbNode.writeGen}). */
const WRITABLE_GEN = Symbol('azscale.db.writableGen');
type TrackedClient = PoolClient & { [RELEASED_AT]?: number; [WRITABLE_GEN]?: number };

const REPLICA_CHECK_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  pg_last_wal_replay_lsn()::text AS lsn,
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS lag`;
const PRIMARY_CHECK_SQL =
  'SELECT pg_is_in_recovery() AS in_recovery, CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END::text AS lsn';
// The insert position, not pg_current_wal_lsn(): with synchronous_commit=off the write position
// can still be short of the commit record a caller just got an answer for.
const CURRENT_LSN_SQL = 'SELECT pg_current_wal_insert_lsn()::text AS lsn';
const REPLAY_LSN_SQL = 'SELECT pg_last_wal_replay_lsn()::text AS lsn';
// The timeline is the first 8 hex digits of the WAL file name; pg_walfile_name() refuses to run
// during recovery, hence the CASE (evaluated lazily).
const POSITION_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END AS lsn,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8) END AS wal`;
const WRITABLE_SQL = 'SELECT pg_is_in_recovery() AS in_recovery';

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
 * One PostgreSQL server behind the router: its pool, its health (nginx-style passive failure
 * counting plus active checks), its replay position and lag, and its counters.
 */
export class DbNode {
  readonly info: DbNodeInfo;
  readonly pool: Pool;
  /** True when the router created the pool (and so ends it on close). */
  readonly owned: boolean;

  inFlight = 0;
  served = 0;
  failures = 0;
  ejections = 0;
  lastError: string | null = null;
  ejected = false;
  /** performance.now() after which an ejected node may be probed. */
  ejectedUntil = 0;
  /** Health of the last active check (the primary is never ejected, only marked). */
  checkOk = true;
  lag: number | null = null;
  lsn: string | null = null;
  inRecovery: boolean | null = null;
  /**
   * Set by the router on primary candidates: a client must be seen out of recovery (once per
   * topology generation) before it gets a write.
   */
  guardWrites = false;
  /**
   * Topology generation: bumped by the router when the primary may have changed, so every client
   * (old or new) is checked again before its next write (libpq's
   * `target_session_attrs=read-write`, applied after each topology change).
   */
  writeGen = 0;

  private readonly settings: NodeSettings;
  private recentFailures: number[] = [];
  private checking: Promise<boolean> | undefined;
  private lsnRefresh: Promise<string | null> | undefined;
  private readonly onPoolError: (err: Error) => void;

  /** Metric handles, fetched once. */
  readonly m: {
    reads: CounterHandle;
    writes: CounterHandle;
    duration: HistogramHandle;
    sqlErrors: CounterHandle;
    connErrors: CounterHandle;
    ejections: CounterHandle;
    lag: GaugeHandle;
  };

  constructor(name: string, role: DbNodeRole, input: DbNodeInput, settings: NodeSettings) {
    this.settings = settings;
    this.info = Object.freeze({ name, role, ...addressOf(input) });
    if (isPgPool(input)) {
      this.pool = input;
      this.owned = false;
    } else {
      const config: PoolConfig =
        typeof input === 'string'
          ? { ...settings.poolConfig, connectionString: input }
          : { ...settings.poolConfig, ...input };
      this.pool = new (loadPg().Pool)(config);
      this.owned = true;
    }
    // An idle client whose server went away makes the pool emit 'error'; with no listener that
    // would crash the process. It is also an early sign the node is in trouble: check it now.
    this.onPoolError = (err: Error) => settings.onIdleError(this, err);
    this.pool.on('error', this.onPoolError);
    const labels = { node: name, role };
    const mt = settings.metrics;
    this.m = {
      reads: mt.counter('db_queries_total', { ...labels, kind: 'read' }),
      writes: mt.counter('db_queries_total', { ...labels, kind: 'write' }),
      duration: mt.histogram('db_query_duration_seconds', labels),
      sqlErrors: mt.counter('db_errors_total', { ...labels, type: 'sql' }),
      connErrors: mt.counter('db_errors_total', { ...labels, type: 'connection' }),
      ejections: mt.counter('db_ejections_total', labels),
      lag: mt.gauge('db_replica_lag_seconds', labels),
    };
  }

  /** True when the node may take reads now. Starts a probe when an ejection has run its time. */
  available(now: number): boolean {
    if (!this.ejected) return true;
    if (now >= this.ejectedUntil) void this.check();
    return false;
  }

  /**
   * Borrows a client (callback style: one promise per statement, as pg-pool's own `query`).
   * A client idle for `prePingAfter` seconds is checked with an empty statement first and
   * replaced if its connection died; that is not a node failure.
   */
  acquire(
    cb: (err: Error | undefined, client: PoolClient | undefined) => void,
    attempt = 0,
    write = false,
  ): void {
    this.pool.connect((err: Error | undefined, client: PoolClient | undefined) => {
      if (err || !client) {
        cb(this.connectError(err), undefined);
        return;
      }
      const last = (client as TrackedClient)[RELEASED_AT];
      if (last === undefined) {
        // First time we see this client: keep a listener on it for its whole life, so a server
        // that goes away while we hold the client does not raise an unhandled 'error'.
        client.on('error', noop);
        this.ready(client, write, cb);
        return;
      }
      if (
        !this.settings.prePing ||
        attempt >= 2 ||
        performance.now() - last < this.settings.prePingAfterMs
      ) {
        this.ready(client, write, cb);
        return;
      }
      client.query(';', (pingErr: Error | undefined) => {
        if (!pingErr) {
          this.ready(client, write, cb);
          return;
        }
        // Stale: drop it and take another one (or a new connection).
        (client as TrackedClient)[RELEASED_AT] = undefined;
        client.release(pingErr);
        this.acquire(cb, attempt + 1, write);
      });
    });
  }

  /**
   * Hands a client to a writer only once it has been seen out of recovery in this topology
   * generation. Nothing of the caller's has been sent yet when this fails, so the router may
   * safely send the write elsewhere.
   */
  private ready(
    client: PoolClient,
    write: boolean,
    cb: (err: Error | undefined, client: PoolClient | undefined) => void,
  ): void {
    const gen = this.writeGen;
    // Generation 0 (no topology change seen yet) needs no check: a router with several
    // candidates found the writable one before its first write.
    if (!write || !this.guardWrites || ((client as TrackedClient)[WRITABLE_GEN] ?? 0) === gen) {
      cb(undefined, client);
      return;
    }
    client.query<{ in_recovery: boolean }>(WRITABLE_SQL, (err, result) => {
      if (err) {
        this.release(client, err);
        cb(this.unavailable(err, true), undefined);
        return;
      }
      if (result.rows[0]?.in_recovery !== false) {
        this.inRecovery = true;
        this.release(client);
        cb(this.notWritable(), undefined);
        return;
      }
      (client as TrackedClient)[WRITABLE_GEN] = gen;
      cb(undefined, client);
    });
  }

  /** The error of a write that found this node in recovery before anything was sent. */
  notWritable(cause?: unknown): BackendUnavailableError {
    const err = new BackendUnavailableError(
      `PostgreSQL ${this.info.name} (${this.info.host}:${this.info.port}) is in recovery (a standby) and takes no writes`,
      { cause, context: { ...this.info, connect: cause === undefined, readOnly: true } },
    );
    Object.assign(err, { node: this.info });
    return err;
  }

  /**
   * Borrows a client. Connection failures become BackendUnavailableError (with `connect: true`
   * in the context), a full pool past `poolTimeout` becomes TimeoutError.
   */
  checkout(write = false): Promise<PoolClient> {
    return new Promise((resolve, reject) => {
      this.acquire((err, client) => (err || !client ? reject(err) : resolve(client)), 0, write);
    });
  }

  /**
   * Returns a client to the pool. After anything but a plain SQL error the client is destroyed:
   * its connection may be gone or in an unknown state.
   */
  release(client: PoolClient, error?: unknown): void {
    if (error !== undefined && (!isServerError(error) || isConnectionError(error))) {
      (client as TrackedClient)[RELEASED_AT] = undefined;
      client.release(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    (client as TrackedClient)[RELEASED_AT] = performance.now();
    client.release();
  }

  /** The error a failed `pool.connect()` surfaces as. */
  connectError(e: unknown): Error {
    if (isPoolWaitTimeout(e)) {
      return new TimeoutError(
        `no connection to ${this.info.name} (${this.info.host}:${this.info.port}) became free within poolTimeout`,
        { cause: e, context: { ...this.info, option: 'pool.poolTimeout' } },
      );
    }
    return this.unavailable(e, true);
  }

  /** A BackendUnavailableError for this node, with the node attached. */
  unavailable(cause: unknown, connect = false): BackendUnavailableError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const err = new BackendUnavailableError(
      `PostgreSQL ${this.info.name} (${this.info.host}:${this.info.port}) is unavailable: ${reason}`,
      { cause, context: { ...this.info, connect } },
    );
    Object.assign(err, { node: this.info });
    return err;
  }

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
    if (isServerError(e) && !isConnectionError(e)) {
      this.served++;
      (write ? this.m.writes : this.m.reads).inc();
      this.m.sqlErrors.inc();
      return attachNode(scrubSqlError(e), this.info);
    }
    if (isConnectionError(e)) {
      this.recordFailure(e);
      return this.unavailable(e);
    }
    // Neither (e.g. a value pg could not serialize): the caller's problem, passed through.
    return attachNode(e, this.info);
  }

  /** Counts a connection failure; ejects the node after `maxFails` within `failTimeout`. */
  recordFailure(e: unknown): void {
    const now = performance.now();
    this.failures++;
    this.m.connErrors.inc();
    this.lastError = e instanceof Error ? e.message : String(e);
    if (this.ejected) return;
    const horizon = now - this.settings.failTimeoutMs;
    this.recentFailures = this.recentFailures.filter((t) => t > horizon);
    this.recentFailures.push(now);
    if (this.recentFailures.length >= this.settings.maxFails) this.eject(e);
  }

  /** Takes the node out of read rotation for `failTimeout` seconds. */
  eject(e: unknown): void {
    this.ejectedUntil = performance.now() + this.settings.failTimeoutMs;
    this.checkOk = false;
    if (this.ejected) return;
    this.ejected = true;
    this.ejections++;
    this.m.ejections.inc();
    this.recentFailures = [];
    this.settings.onEject(this, e);
  }

  private restore(): void {
    this.checkOk = true;
    if (!this.ejected) return;
    this.ejected = false;
    this.recentFailures = [];
    this.settings.onRestore(this);
  }

  /**
   * Active health check (also the probe that brings an ejected node back): liveness, recovery
   * state, WAL position and, for a replica, lag. One check at a time per node; an ejected node is
   * not checked before its `failTimeout` has run.
   */
  check(): Promise<boolean> {
    if (this.checking) return this.checking;
    if (this.ejected && performance.now() < this.ejectedUntil) return Promise.resolve(false);
    this.checking = this.runCheck().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async runCheck(): Promise<boolean> {
    const sql = this.info.role === 'replica' ? REPLICA_CHECK_SQL : PRIMARY_CHECK_SQL;
    let timer: NodeJS.Timeout | undefined;
    let client: PoolClient | undefined;
    let done = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`health check timed out after ${this.settings.healthCheckTimeoutMs} ms`),
          ),
        this.settings.healthCheckTimeoutMs,
      );
      timer.unref?.();
    });
    const attempt = (async () => {
      const c = await this.checkout();
      if (done) {
        this.release(c);
        throw new Error('health check abandoned');
      }
      client = c;
      const r = await c.query<{ in_recovery: boolean; lsn: string | null; lag?: number | null }>(
        sql,
      );
      return r.rows[0];
    })();
    try {
      const row = await Promise.race([attempt, timeout]);
      done = true;
      if (client) this.release(client);
      this.inRecovery = row?.in_recovery ?? null;
      this.setLsn(row?.lsn ?? null);
      if (this.info.role === 'replica') {
        const lag = row?.lag;
        this.lag = typeof lag === 'number' && Number.isFinite(lag) ? Math.max(0, lag) : null;
        if (this.lag !== null) this.m.lag.set(this.lag);
      }
      this.restore();
      return true;
    } catch (e) {
      done = true;
      attempt.catch(noop);
      if (client) this.release(client, e instanceof Error ? e : new Error(String(e)));
      const cause = e instanceof BackendUnavailableError ? (e.cause ?? e) : e;
      // A check that is still queued for a client of a busy pool says the node is loaded, not
      // down; ejecting it would push its load onto the others.
      const queued = client === undefined && this.saturated();
      if (!queued && !(e instanceof TimeoutError && isPoolWaitTimeout(e.cause))) {
        this.failures++;
        this.m.connErrors.inc();
        this.lastError = cause instanceof Error ? cause.message : String(cause);
        this.eject(cause);
      }
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** True when every client of the pool is in use. */
  private saturated(): boolean {
    const max = (this.pool as unknown as { options?: { max?: number } }).options?.max ?? 10;
    return this.pool.totalCount >= max && this.pool.idleCount === 0;
  }

  /** Records a WAL position; a replica's replay position only moves forward. */
  setLsn(lsn: string | null): void {
    if (lsn === null) {
      this.lsn = null;
      return;
    }
    if (this.lsn === null || compareWalLsn(lsn, this.lsn) > 0) this.lsn = lsn;
  }

  /**
   * Fetches the replica's replay position now (shared by concurrent callers). Connection failures
   * count against the node and yield `null`.
   */
  refreshLsn(): Promise<string | null> {
    if (this.lsnRefresh) return this.lsnRefresh;
    this.lsnRefresh = (async () => {
      let client: PoolClient | undefined;
      try {
        client = await this.checkout();
        const r = await client.query<{ lsn: string | null }>(REPLAY_LSN_SQL);
        this.release(client);
        client = undefined;
        const lsn = r.rows[0]?.lsn ?? null;
        this.inRecovery = lsn !== null;
        this.setLsn(lsn);
        return lsn === null ? null : this.lsn;
      } catch (e) {
        if (client) this.release(client, e);
        this.failure(e, false);
        return null;
      } finally {
        this.lsnRefresh = undefined;
      }
    })();
    return this.lsnRefresh;
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

  /** Detaches from the pool and ends it when we own it. */
  async close(): Promise<void> {
    if (!this.owned) {
      this.pool.off('error', this.onPoolError);
      return;
    }
    try {
      await this.pool.end();
    } catch {
      // Ended already (someone called end() on our pool): nothing left to release.
    }
    // Keep the error listener: a client ending late must not crash the process.
  }
}

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
