import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { ClosedError, QueryRoutingError, ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import type { CounterHandle } from '../core/metrics.js';
import { type SpanHandle, type WithSpanOptions, withSpan } from '../core/trace.js';
import { postgresSpanAttributes } from '../observability/semconv.js';
import { assertObject } from '../core/validate.js';
import { checkCtx, checkIsolation, checkParams, checkQuery, describeSql } from './checks.js';
import { Gate } from './gate.js';
import { DbNode } from './node.js';
import type { DbNodeInfo, DbNodeStats, DbQuery } from './node-info.js';
import { WritePositions } from './positions.js';
import { PrimarySet } from './primary.js';
import { ReadPlanner } from './routing.js';
import { StatementRunner } from './runner.js';
import { nodeSettingsOf, resolveRouterSettings } from './settings.js';
import { isWriteSql } from './sql.js';
import type {
  DatabaseRouterEvents,
  DatabaseRouterStats,
  DbContext,
  DbQueryOptions,
  DbTransactionOptions,
  RoutedQueryResult,
} from './types.js';
import type { DatabaseRouterOptions } from './options.js';

const CLIENT_SPAN: WithSpanOptions = { kind: 'client' };

/** Adds the serving node to a recorded span once the statement is done. */
function traced<T extends { node: DbNodeInfo }>(span: SpanHandle, p: Promise<T>): Promise<T> {
  if (!span.isRecording()) return p;
  return p.then((r) => {
    span.setAttributes({
      ...postgresSpanAttributes(r.node),
      'azscale.db.node': r.node.name,
      'azscale.db.role': r.node.role,
    });
    return r;
  });
}

/**
 * Routes PostgreSQL statements: writes to the primary, reads round-robin over healthy replicas,
 * with read-your-writes, lag-aware skipping, ejection of failing replicas (nginx's `max_fails`
 * within `fail_timeout`) and a limited fallback to the primary. Built on pg-pool.
 *
 * @example
 * const db = new DatabaseRouter({
 *   primary: process.env.DATABASE_URL!,
 *   replicas: process.env.DATABASE_REPLICA_URLS!.split(','),
 *   readYourWrites: { mode: 'lsn' },
 *   maxReplicaLag: 5,
 * });
 * const ctx = req.session.db ?? (req.session.db = {});
 * await db.write('UPDATE users SET name = $1 WHERE id = $2', ['Ada', id], ctx);
 * const { rows } = await db.read('SELECT name FROM users WHERE id = $1', [id], ctx); // sees 'Ada'
 */
export class DatabaseRouter {
  private readonly primaries: PrimarySet;
  private readonly replicas: DbNode[];
  private readonly nodes: DbNode[];
  private readonly positions: WritePositions;
  private readonly planner: ReadPlanner;
  private readonly runner: StatementRunner;
  private readonly gate: Gate;
  private readonly events = new Emitter<DatabaseRouterEvents>();
  private readonly retries: CounterHandle;
  private readonly timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: DatabaseRouterOptions) {
    const s = resolveRouterSettings(options);
    const { metrics, pool } = s;
    const settings = nodeSettingsOf(s, {
      onEject: (node, error) => {
        if (this.events.has('eject')) this.events.emit('eject', { node: node.info, error });
      },
      onRestore: (node) => {
        if (this.events.has('restore')) this.events.emit('restore', { node: node.info });
      },
      onIdleError: (node) => {
        if (!this.closed) void node.check();
      },
    });
    const candidates = s.primaries.map(
      (p, i) =>
        new DbNode(s.primaries.length === 1 ? 'primary' : `primary-${i}`, 'primary', p, settings),
    );
    this.primaries = new PrimarySet(candidates, s.checkTimeout * 1000, (from, to) => {
      this.positions.forgetPrimary();
      if (this.events.has('primary')) this.events.emit('primary', { from: from.info, to: to.info });
    });
    this.replicas = s.replicas.map((r, i) => new DbNode(`replica-${i}`, 'replica', r, settings));
    this.nodes = [...candidates, ...this.replicas];

    const primaryMax = Number(
      ((candidates[0] as DbNode).pool as unknown as { options?: { max?: number } }).options?.max ??
        settings.poolConfig.max,
    );
    const limit = s.fallbackLimit ?? Math.max(1, Math.floor(primaryMax / 2));
    this.gate = new Gate(limit, pool.poolTimeout * 1000);
    // Created in the order 0.1.0 created them, so the exposition keeps its order.
    const fallbacks = {
      fallback: metrics.counter('db_read_fallbacks_total', { reason: 'fallback' }),
      lsn: metrics.counter('db_read_fallbacks_total', { reason: 'lsn' }),
      window: metrics.counter('db_read_fallbacks_total', { reason: 'window' }),
    };
    this.retries = metrics.counter('db_read_retries_total');
    this.positions = new WritePositions(
      s.ryw,
      this.primaries,
      metrics.counter('db_ctx_discarded_total'),
    );
    this.planner = new ReadPlanner(this.replicas, this.primaries, this.positions, s.maxLag);
    this.runner = new StatementRunner({
      gate: this.gate,
      events: this.events,
      positions: this.positions,
      planner: this.planner,
      primaries: this.primaries,
      fallbacks,
      retries: this.retries,
      replicaCount: this.replicas.length,
    });

    if (s.interval > 0) {
      this.timer = setInterval(() => this.checkAll(), s.interval * 1000);
      this.timer.unref?.();
      // A first look right away, so lag and replay positions are known early.
      setImmediate(() => this.checkAll()).unref?.();
    }
  }

  /** The candidate writes go to now. */
  private get primary(): DbNode {
    return this.primaries.current;
  }

  /** Subscribes to an event; returns a disposer. */
  on<K extends keyof DatabaseRouterEvents>(event: K, listener: DatabaseRouterEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** Subscribes to one occurrence of an event; returns a disposer. */
  once<K extends keyof DatabaseRouterEvents>(
    event: K,
    listener: DatabaseRouterEvents[K],
  ): Disposer {
    return this.events.once(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof DatabaseRouterEvents>(event: K, listener: DatabaseRouterEvents[K]): void {
    this.events.off(event, listener);
  }

  /** The primary's pg Pool (the seed's `get_write_session`). Do not end it; `close()` does. */
  getWritePool(): Pool {
    this.assertOpen();
    return this.primary.pool;
  }

  /**
   * The pool of a healthy, fit replica (round-robin), or the primary's when none is fit for `ctx`
   * (the seed's `get_read_session`). Statements on it bypass the router: no retry, no fallback
   * limit, no write check. With `lsn` read-your-writes only the last known replay positions are
   * used (no round trip), so a replica that has just caught up may not be chosen yet.
   */
  getReadPool(ctx?: DbContext): Pool {
    this.assertOpen();
    checkCtx(ctx);
    const plan = this.planner.plan(ctx, undefined);
    return (plan.node ?? this.primary).pool;
  }

  /**
   * Runs a statement. `role: 'write'` (the default) goes to the primary; `role: 'read'` goes
   * where {@link DatabaseRouter.read} sends it.
   */
  query<R extends QueryResultRow = QueryResultRow>(
    sql: DbQuery,
    params?: unknown[],
    options: DbQueryOptions = {},
  ): Promise<RoutedQueryResult<R>> {
    let o: Record<string, unknown>;
    try {
      o = assertObject(options, 'options', true) ?? {};
    } catch (e) {
      return Promise.reject(e);
    }
    const role = o.role ?? 'write';
    if (role === 'read') return this.read<R>(sql, params, o.ctx as DbContext | undefined);
    if (role !== 'write') {
      return Promise.reject(
        new ValidationError(
          `options.role must be 'read' or 'write', received ${describeValue(role)}`,
          {
            option: 'role',
          },
        ),
      );
    }
    return this.write<R>(sql, params, o.ctx as DbContext | undefined);
  }

  /**
   * Runs a read on a fit replica (round-robin), honouring `ctx`'s read-your-writes position and
   * `maxReplicaLag`, else on the primary. A connection failure is retried once on another node.
   * A statement that writes fails with QueryRoutingError.
   */
  read<R extends QueryResultRow = QueryResultRow>(
    sql: DbQuery,
    params?: unknown[],
    ctx?: DbContext,
  ): Promise<RoutedQueryResult<R>> {
    return withSpan(
      'azscale.db.read',
      undefined,
      (span) => {
        let text: string;
        try {
          this.assertOpen();
          text = checkQuery(sql);
          checkParams(params);
          checkCtx(ctx);
        } catch (e) {
          return Promise.reject(e);
        }
        if (isWriteSql(text)) {
          return Promise.reject(
            new QueryRoutingError(
              `a statement that writes was sent as a read (role 'read'): ${describeSql(text)}; use write() or role 'write'`,
              { context: { statement: describeSql(text) } },
            ),
          );
        }
        const t0 = performance.now();
        const runner = this.runner;
        if (this.positions.needsRebase(ctx)) {
          return traced(
            span,
            this.positions
              .rebase(ctx)
              .then(() =>
                runner.readRouted<R>(this.planner.plan(ctx, undefined), sql, params, ctx, t0),
              ),
          );
        }
        const plan = this.planner.plan(ctx, undefined);
        // The common case (a fit replica, or no replicas at all) takes the short path: one
        // promise for the statement, nothing else unless it fails.
        if (
          plan.node !== undefined &&
          (plan.reason === 'replica' || plan.reason === 'no-replicas') &&
          !this.events.has('query')
        ) {
          const node = plan.node;
          return traced(
            span,
            node
              .execute<R>(sql, params, false)
              .catch((e: unknown) => runner.readFailed<R>(e, node, sql, params, ctx, t0)),
          );
        }
        return traced(span, runner.readRouted<R>(plan, sql, params, ctx, t0));
      },
      CLIENT_SPAN,
    );
  }

  /** Runs a statement on the primary and records its position in `ctx`. */
  write<R extends QueryResultRow = QueryResultRow>(
    sql: DbQuery,
    params?: unknown[],
    ctx?: DbContext,
  ): Promise<RoutedQueryResult<R>> {
    return withSpan(
      'azscale.db.write',
      undefined,
      (span) => {
        try {
          this.assertOpen();
          checkQuery(sql);
          checkParams(params);
          checkCtx(ctx);
        } catch (e) {
          return Promise.reject(e);
        }
        const wantLsn = this.positions.wantsLsn(ctx);
        if (ctx === undefined && !this.events.has('query')) {
          return traced(
            span,
            this.primaries.run((node) => node.execute<R>(sql, params, true)),
          );
        }
        return traced(span, this.runner.writeRouted<R>(sql, params, ctx, wantLsn));
      },
      CLIENT_SPAN,
    );
  }

  /**
   * Runs `fn` in a transaction. Not read-only: on the primary, committed and recorded in `ctx`.
   * Read-only: `BEGIN READ ONLY` on a read node chosen as for {@link DatabaseRouter.read}
   * (retried on another node if the first cannot be reached before `fn` starts). `fn` gets a pg
   * client; do not release it. A throw rolls back and rethrows.
   */
  transaction<T>(
    fn: (client: PoolClient) => Promise<T>,
    options: DbTransactionOptions = {},
  ): Promise<T> {
    return withSpan(
      'azscale.db.transaction',
      undefined,
      async (span) => {
        this.assertOpen();
        if (typeof fn !== 'function') {
          throw new ValidationError(`fn must be a function, received ${describeValue(fn)}`, {
            option: 'fn',
          });
        }
        const o = assertObject(options, 'options', true) ?? {};
        const ctx = o.ctx as DbContext | undefined;
        checkCtx(ctx);
        const iso = checkIsolation(o.isolation);
        const readOnly = o.readOnly === true;
        span.setAttribute('azscale.db.read_only', readOnly);
        const begin = `BEGIN${iso ? ` ISOLATION LEVEL ${iso.toUpperCase()}` : ''}${readOnly ? ' READ ONLY' : ''}`;
        return readOnly
          ? this.runner.readOnlyTransaction(begin, fn, ctx, span)
          : this.runner.writeTransaction(begin, fn, ctx, span);
      },
      CLIENT_SPAN,
    );
  }

  /** Per node: role, health, lag, in-flight and served counts; plus the fallback limiter. */
  stats(): DatabaseRouterStats {
    const now = performance.now();
    const current = this.primary;
    const candidates = this.primaries.candidates.map((c) => c.stats(now));
    const primary = candidates[this.primaries.candidates.indexOf(current)] as DbNodeStats;
    const replicas = this.replicas.map((r) => r.stats(now));
    return {
      primary,
      candidates,
      replicas,
      nodes: [primary, ...replicas, ...candidates.filter((c) => c !== primary)],
      fallback: {
        inFlight: this.gate.inFlight,
        waiting: this.gate.waiting,
        limit: this.gate.limit,
      },
    };
  }

  /**
   * Runs a health check of every node now (the periodic check does the same) and resolves when
   * they are done. Useful after a deploy, and in tests.
   */
  async checkHealth(): Promise<DatabaseRouterStats> {
    this.assertOpen();
    await Promise.all(this.nodes.map((n) => n.check()));
    return this.stats();
  }

  /**
   * Stops health checks and ends the pools the router created. Pools passed in are left open
   * (only our listeners are removed). Later calls fail with ClosedError. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.gate.close();
    this.closing = Promise.all(this.nodes.map((n) => n.close())).then(() => {
      this.events.clear();
    });
    return this.closing;
  }

  private checkAll(): void {
    if (this.closed) return;
    for (const n of this.nodes) void n.check();
    const primary = this.primary;
    void primary.check().then((ok) => {
      if (this.closed || primary !== this.primary) return;
      // A primary that is gone or has become a standby: find the new one now, so reads that
      // the primary serves (and the first write) do not wait for it.
      if (!ok || primary.inRecovery === true) this.primaries.markStale(primary);
      if (this.primaries.isStale) this.primaries.discover().catch(() => {});
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('the DatabaseRouter is closed');
  }
}
