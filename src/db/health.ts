import type { PoolClient } from 'pg';
import type { CounterHandle, GaugeHandle, HistogramHandle, MetricsSink } from '../core/metrics.js';
import { BackendUnavailableError, TimeoutError } from '../core/errors.js';
import { isPgPoolWaitTimeout } from '../core/backend-errors.js';
import { compareWalLsn } from './lsn.js';
import type { DbNodeRole } from './node-info.js';
import type { DbNodeInput } from './options.js';
import { NodePool, type PoolSettings } from './pool.js';

/** What a node needs from the router. */
export interface NodeSettings extends PoolSettings {
  maxFails: number;
  failTimeoutMs: number;
  healthCheckTimeoutMs: number;
  metrics: MetricsSink;
  /** Called when the node is ejected or restored, or a background check fails. */
  onEject(node: NodeHealth, error: unknown): void;
  onRestore(node: NodeHealth): void;
  onIdleError(node: NodeHealth, error: unknown): void;
}

/** A node's metric handles, fetched once. */
export interface NodeMetrics {
  reads: CounterHandle;
  writes: CounterHandle;
  duration: HistogramHandle;
  sqlErrors: CounterHandle;
  connErrors: CounterHandle;
  ejections: CounterHandle;
  lag: GaugeHandle;
}

const REPLICA_CHECK_SQL = `SELECT pg_is_in_recovery() AS in_recovery,
  pg_last_wal_replay_lsn()::text AS lsn,
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::float8 AS lag`;
const PRIMARY_CHECK_SQL =
  'SELECT pg_is_in_recovery() AS in_recovery, CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END::text AS lsn';
const REPLAY_LSN_SQL = 'SELECT pg_last_wal_replay_lsn()::text AS lsn';

/**
 * The health of one node: nginx-style passive failure counting (`maxFails` within
 * `failTimeout` ejects a replica from reads), active checks that bring an ejected node back,
 * and the replay position and lag the router routes reads by.
 */
export abstract class NodeHealth extends NodePool {
  failures = 0;
  ejections = 0;
  lastError: string | null = null;
  ejected = false;
  /** performance.now() after which an ejected node may be probed. */
  ejectedUntil = 0;
  /** Health of the last active check (the primary is never ejected, only marked). */
  checkOk = true;
  lag: number | null = null;
  /** Last known WAL position: replay position of a replica, current position of the primary. */
  lsn: string | null = null;

  /** Metric handles, fetched once. */
  readonly m: NodeMetrics;

  protected readonly settings: NodeSettings;
  private recentFailures: number[] = [];
  private checking: Promise<boolean> | undefined;
  private lsnRefresh: Promise<string | null> | undefined;

  constructor(name: string, role: DbNodeRole, input: DbNodeInput, settings: NodeSettings) {
    super(name, role, input, settings);
    this.settings = settings;
    // A pool error is also an early sign the node is in trouble: the router checks it now.
    this.listenForPoolErrors((err) => settings.onIdleError(this, err));
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

  /**
   * Turns an error from this node into what the caller gets, recording it (see
   * {@link DbNode.failure}).
   */
  abstract failure(e: unknown, write: boolean): unknown;

  /** True when the node may take reads now. Starts a probe when an ejection has run its time. */
  available(now: number): boolean {
    if (!this.ejected) return true;
    if (now >= this.ejectedUntil) void this.check();
    return false;
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
      attempt.catch(() => {});
      if (client) this.release(client, e instanceof Error ? e : new Error(String(e)));
      const cause = e instanceof BackendUnavailableError ? (e.cause ?? e) : e;
      // A check that is still queued for a client of a busy pool says the node is loaded, not
      // down; ejecting it would push its load onto the others.
      const queued = client === undefined && this.saturated();
      if (!queued && !(e instanceof TimeoutError && isPgPoolWaitTimeout(e.cause))) {
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
}
