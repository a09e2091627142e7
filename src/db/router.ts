import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import {
  BackendUnavailableError,
  ClosedError,
  QueryRoutingError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { type CounterHandle, type MetricsSink, noopMetrics } from '../core/metrics.js';
import { type SpanHandle, type WithSpanOptions, withSpan } from '../core/trace.js';
import { postgresSpanAttributes } from '../observability/semconv.js';
import { assertNumber, assertObject } from '../core/validate.js';
import { isConnectionError, isServerError } from './classify.js';
import { Gate } from './gate.js';
import { compareWalLsn, isWalLsn, maxWalLsn } from './lsn.js';
import {
  type DbNodeInfo,
  type DbNodeStats,
  type DbPosition,
  type DbQuery,
  DbNode,
  attachNode,
} from './node.js';
import { PrimarySet, isReadOnlyRefusal, readOnlyRefusal, writeNotSent } from './primary.js';
import {
  type DatabaseRouterOptions,
  type ReadYourWrites,
  poolConfigFrom,
  assertNodeInput,
  resolvePoolOptions,
  resolvePrimaries,
  resolveReadYourWrites,
} from './options.js';
import { isWriteSql } from './sql.js';

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

type Node = DbNode;

type Plan =
  | { node: Node; reason: DbRouteReason; check?: undefined }
  /** `aged`: the target is older than `maxAge`; the primary then serves it as a fallback. */
  | { check: Node; target: string; aged: boolean; node?: undefined };

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

const ISOLATION = new Set(['read committed', 'repeatable read', 'serializable']);

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
  private readonly replicas: Node[];
  private readonly nodes: Node[];
  private readonly ryw: ReadYourWrites;
  private readonly windowMs: number;
  private readonly maxLag: number | undefined;
  private readonly gate: Gate;
  private readonly events = new Emitter<DatabaseRouterEvents>();
  private readonly fallbacks: Record<'fallback' | 'lsn' | 'window', CounterHandle>;
  private readonly retries: CounterHandle;
  private readonly discarded: CounterHandle;
  private readonly lsnMaxAgeMs: number;
  private primaryCheck: Promise<DbPosition | undefined> | undefined;
  // performance.now() of the last primary position query. Not 0: performance.now() counts from
  // the process's (or worker thread's) start, so a router made within its first second would
  // otherwise skip its first check.
  private primaryCheckedAt = Number.NEGATIVE_INFINITY;
  private primaryLsn: string | undefined;
  /** The last position the current primary gave {@link DatabaseRouter.primaryPosition}. */
  private lastPosition: { node: Node; pos: DbPosition } | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private rr = 0;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: DatabaseRouterOptions) {
    const o = assertObject(options, 'options') as unknown as DatabaseRouterOptions;
    const primaryInputs = resolvePrimaries(o.primary, o.primaries);
    const replicaInputs = o.replicas ?? [];
    if (!Array.isArray(replicaInputs)) {
      throw new ValidationError(
        `replicas must be an array, received ${describeValue(replicaInputs)}`,
        {
          option: 'replicas',
        },
      );
    }
    const inputs = replicaInputs.map((r, i) => assertNodeInput(r, `replicas[${i}]`));
    const pool = resolvePoolOptions(o.pool);
    this.ryw = resolveReadYourWrites(o.readYourWrites);
    this.windowMs = this.ryw && this.ryw.mode === 'window' ? this.ryw.seconds * 1000 : 0;
    this.lsnMaxAgeMs = this.ryw && this.ryw.mode === 'lsn' ? (this.ryw.maxAge ?? 30) * 1000 : 0;
    this.maxLag =
      o.maxReplicaLag === undefined
        ? undefined
        : assertNumber(o.maxReplicaLag, 'maxReplicaLag (seconds)', { min: 0 });
    const interval =
      o.healthCheckInterval === undefined
        ? 5
        : assertNumber(o.healthCheckInterval, 'healthCheckInterval (seconds)', { min: 0 });
    const checkTimeout =
      o.healthCheckTimeout === undefined
        ? 5
        : assertNumber(o.healthCheckTimeout, 'healthCheckTimeout (seconds)', { positive: true });
    const maxFails =
      o.maxFails === undefined
        ? 1
        : assertNumber(o.maxFails, 'maxFails', { integer: true, min: 1 });
    const failTimeout =
      o.failTimeout === undefined
        ? 10
        : assertNumber(o.failTimeout, 'failTimeout (seconds)', { positive: true });
    if (o.primaryFallbackLimit !== undefined) {
      assertNumber(o.primaryFallbackLimit, 'primaryFallbackLimit', { integer: true, min: 0 });
    }
    const metrics: MetricsSink = o.metrics ?? noopMetrics;
    if (typeof metrics.counter !== 'function') {
      throw new ValidationError(
        `metrics must be a MetricsSink, received ${describeValue(metrics)}`,
        {
          option: 'metrics',
        },
      );
    }

    const settings = {
      prePing: pool.prePing,
      prePingAfterMs: pool.prePingAfter * 1000,
      maxFails,
      failTimeoutMs: failTimeout * 1000,
      healthCheckTimeoutMs: checkTimeout * 1000,
      poolConfig: poolConfigFrom(pool),
      metrics,
      onEject: (node: Node, error: unknown) => {
        if (this.events.has('eject')) this.events.emit('eject', { node: node.info, error });
      },
      onRestore: (node: Node) => {
        if (this.events.has('restore')) this.events.emit('restore', { node: node.info });
      },
      onIdleError: (node: Node) => {
        if (!this.closed) void node.check();
      },
    };
    const candidates = primaryInputs.map(
      (p, i) =>
        new DbNode(primaryInputs.length === 1 ? 'primary' : `primary-${i}`, 'primary', p, settings),
    );
    this.primaries = new PrimarySet(candidates, checkTimeout * 1000, (from, to) => {
      // Positions of the old primary say nothing about the new one.
      this.primaryLsn = undefined;
      if (this.events.has('primary')) this.events.emit('primary', { from: from.info, to: to.info });
    });
    this.replicas = inputs.map((r, i) => new DbNode(`replica-${i}`, 'replica', r, settings));
    this.nodes = [...candidates, ...this.replicas];

    const primaryMax = Number(
      ((candidates[0] as Node).pool as unknown as { options?: { max?: number } }).options?.max ??
        settings.poolConfig.max,
    );
    const limit = o.primaryFallbackLimit ?? Math.max(1, Math.floor(primaryMax / 2));
    this.gate = new Gate(limit, pool.poolTimeout * 1000);
    this.fallbacks = {
      fallback: metrics.counter('db_read_fallbacks_total', { reason: 'fallback' }),
      lsn: metrics.counter('db_read_fallbacks_total', { reason: 'lsn' }),
      window: metrics.counter('db_read_fallbacks_total', { reason: 'window' }),
    };
    this.retries = metrics.counter('db_read_retries_total');
    this.discarded = metrics.counter('db_ctx_discarded_total');

    if (interval > 0) {
      this.timer = setInterval(() => this.checkAll(), interval * 1000);
      this.timer.unref?.();
      // A first look right away, so lag and replay positions are known early.
      setImmediate(() => this.checkAll()).unref?.();
    }
  }

  /** The candidate writes go to now. */
  private get primary(): Node {
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
    const plan = this.plan(ctx, undefined);
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
      (span) => traced(span, this.readNow<R>(sql, params, ctx)),
      CLIENT_SPAN,
    );
  }

  private readNow<R extends QueryResultRow>(
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
  ): Promise<RoutedQueryResult<R>> {
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
    if (this.needsRebase(ctx)) {
      return this.rebase(ctx).then(() =>
        this.readRouted<R>(this.plan(ctx, undefined), sql, params, ctx, t0),
      );
    }
    const plan = this.plan(ctx, undefined);
    // The common case (a fit replica, or no replicas at all) takes the short path: one promise
    // for the statement, nothing else unless it fails.
    if (
      plan.node !== undefined &&
      (plan.reason === 'replica' || plan.reason === 'no-replicas') &&
      !this.events.has('query')
    ) {
      const node = plan.node;
      return node
        .execute<R>(sql, params, false)
        .catch((e: unknown) => this.readFailed<R>(e, node, sql, params, ctx, t0));
    }
    return this.readRouted<R>(plan, sql, params, ctx, t0);
  }

  private async readRouted<R extends QueryResultRow>(
    first: Plan,
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
    t0: number,
  ): Promise<RoutedQueryResult<R>> {
    const plan = first.check ? await this.confirm(first, ctx, undefined) : first;
    try {
      return await this.runRead<R>(plan.node, plan.reason, sql, params, t0, false);
    } catch (e) {
      return this.readFailed<R>(e, plan.node, sql, params, ctx, t0);
    }
  }

  /** After a failed read: SQL errors pass, a replica's connection failure gets one retry. */
  private async readFailed<R extends QueryResultRow>(
    e: unknown,
    node: Node,
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
    t0: number,
  ): Promise<RoutedQueryResult<R>> {
    if (!(e instanceof BackendUnavailableError) || node.info.role !== 'replica') {
      // The primary lost: the next write (or health check) looks for it again.
      if (e instanceof BackendUnavailableError) this.primaries.markStale(node);
      throw readOnlyViolation(e, node);
    }
    // One retry, on another fit replica or the primary, so a dying replica costs no read.
    this.retries.inc();
    if (this.events.has('retry')) this.events.emit('retry', { from: node.info, error: e });
    let second = this.plan(ctx, node);
    if (second.check) second = await this.confirm(second, ctx, node);
    try {
      return await this.runRead<R>(second.node, second.reason, sql, params, t0, true);
    } catch (e2) {
      throw readOnlyViolation(e2, second.node);
    }
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
      (span) => traced(span, this.writeNow<R>(sql, params, ctx)),
      CLIENT_SPAN,
    );
  }

  private writeNow<R extends QueryResultRow>(
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
  ): Promise<RoutedQueryResult<R>> {
    try {
      this.assertOpen();
      checkQuery(sql);
      checkParams(params);
      checkCtx(ctx);
    } catch (e) {
      return Promise.reject(e);
    }
    const wantLsn = ctx !== undefined && this.ryw !== false && this.ryw.mode === 'lsn';
    if (!wantLsn && ctx === undefined && !this.events.has('query')) {
      return this.onPrimary((node) => node.execute<R>(sql, params, true));
    }
    return this.writeRouted<R>(sql, params, ctx, wantLsn);
  }

  private async writeRouted<R extends QueryResultRow>(
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
    wantLsn: boolean,
  ): Promise<RoutedQueryResult<R>> {
    const t0 = performance.now();
    let node = this.primary;
    try {
      return await this.onPrimary(async (n) => {
        node = n;
        let result: RoutedQueryResult<R>;
        let lsn: string | undefined;
        let timeline: number | undefined;
        if (wantLsn) ({ result, lsn, timeline } = await n.executeWithLsn<R>(sql, params));
        else result = await n.execute<R>(sql, params, true);
        if (ctx) this.recordWrite(ctx, lsn, timeline, n);
        if (this.events.has('query')) this.emitQuery(n, 'write', 'write', false, t0, true);
        return result;
      });
    } catch (e) {
      if (this.events.has('query')) this.emitQuery(node, 'write', 'write', false, t0, false, e);
      throw e;
    }
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
      (span) => this.transactionNow(fn, options, span),
      CLIENT_SPAN,
    );
  }

  private async transactionNow<T>(
    fn: (client: PoolClient) => Promise<T>,
    options: DbTransactionOptions,
    span: SpanHandle,
  ): Promise<T> {
    this.assertOpen();
    if (typeof fn !== 'function') {
      throw new ValidationError(`fn must be a function, received ${describeValue(fn)}`, {
        option: 'fn',
      });
    }
    const o = assertObject(options, 'options', true) ?? {};
    const ctx = o.ctx as DbContext | undefined;
    checkCtx(ctx);
    const iso = o.isolation;
    if (iso !== undefined && (typeof iso !== 'string' || !ISOLATION.has(iso))) {
      throw new ValidationError(
        `isolation must be 'read committed', 'repeatable read' or 'serializable', received ${describeValue(iso)}`,
        { option: 'isolation' },
      );
    }
    const readOnly = o.readOnly === true;
    span.setAttribute('azscale.db.read_only', readOnly);
    const begin = `BEGIN${iso ? ` ISOLATION LEVEL ${iso.toUpperCase()}` : ''}${readOnly ? ' READ ONLY' : ''}`;
    const t0 = performance.now();
    if (!readOnly) {
      const wantLsn = ctx !== undefined && this.ryw !== false && this.ryw.mode === 'lsn';
      try {
        return await this.onPrimary((node) => {
          span.setAttribute('azscale.db.node', node.info.name);
          return this.runTransaction(node, 'write', begin, fn, ctx, wantLsn, t0, false);
        });
      } catch (e) {
        throw e instanceof TxnStartError ? e.error : e;
      }
    }
    if (this.needsRebase(ctx)) await this.rebase(ctx);
    let plan = this.plan(ctx, undefined);
    if (plan.check) plan = await this.confirm(plan, ctx, undefined);
    span.setAttribute('azscale.db.node', plan.node.info.name);
    try {
      return await this.runTransaction(
        plan.node,
        plan.reason,
        begin,
        fn,
        undefined,
        false,
        t0,
        false,
      );
    } catch (e) {
      if (
        !(e instanceof TxnStartError) ||
        !(e.error instanceof BackendUnavailableError) ||
        plan.node.info.role !== 'replica'
      ) {
        throw e instanceof TxnStartError ? e.error : e;
      }
      this.retries.inc();
      if (this.events.has('retry'))
        this.events.emit('retry', { from: plan.node.info, error: e.error });
      let second = this.plan(ctx, plan.node);
      if (second.check) second = await this.confirm(second, ctx, plan.node);
      span.setAttribute('azscale.db.node', second.node.info.name);
      try {
        return await this.runTransaction(
          second.node,
          second.reason,
          begin,
          fn,
          undefined,
          false,
          t0,
          true,
        );
      } catch (e2) {
        throw e2 instanceof TxnStartError ? e2.error : e2;
      }
    }
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

  // --- routing -------------------------------------------------------------------------------

  /**
   * Picks a read node from what is known now (no I/O). In `lsn` mode, when the fit replica's
   * known replay position is short of `ctx.lsn`, asks the caller to confirm it with one query.
   */
  private plan(ctx: DbContext | undefined, exclude: Node | undefined): Plan {
    const n = this.replicas.length;
    if (n === 0) return { node: this.primary, reason: 'no-replicas' };
    let target: string | undefined;
    let aged = false;
    if (ctx !== undefined && this.ryw !== false) {
      const now = Date.now();
      let at = ctx.lastWriteAtMs;
      if (typeof at === 'number' && at > now + CLOCK_SKEW_MS) {
        // A write time in the future (a forged ctx, a clock set back) would pin this ctx for as
        // long as it stays ahead: take it as a write just now, which ages like any other.
        ctx.lastWriteAtMs = at = now;
        this.discarded.inc();
      }
      if (this.ryw.mode === 'window') {
        if (typeof at === 'number' && now - at < this.windowMs) {
          return { node: this.primary, reason: 'window' };
        }
      } else if (ctx.lsn !== undefined) {
        // A position no replica has replayed maxAge after its write (a stuck or rebuilt
        // replica) still reads from the primary, but as a fallback within
        // primaryFallbackLimit: a ctx must not hold reads on the primary outside that limit
        // for good. A ctx without a write time gets one now, so its position ages too.
        if (typeof at !== 'number') ctx.lastWriteAtMs = at = now;
        aged = now - at >= this.lsnMaxAgeMs;
        target = ctx.lsn;
      }
    }
    const now = performance.now();
    const start = this.rr;
    this.rr = start + 1 >= n ? 0 : start + 1;
    let behind: Node | undefined;
    for (let i = 0; i < n; i++) {
      const r = this.replicas[(start + i) % n] as Node;
      if (r === exclude || !r.available(now)) continue;
      if (this.maxLag !== undefined && r.lag !== null && r.lag > this.maxLag) continue;
      if (target !== undefined && (r.lsn === null || compareWalLsn(r.lsn, target) < 0)) {
        behind ??= r;
        continue;
      }
      return { node: r, reason: 'replica' };
    }
    if (behind && target !== undefined) return { check: behind, target, aged };
    return { node: this.primary, reason: 'fallback' };
  }

  /**
   * Asks a replica for its replay position; it serves the read only if it has reached `target`.
   * Otherwise the read goes to the primary, unless `target` is past the primary's own position:
   * no replica can ever reach such a position (a ctx from before a restore or a timeline switch,
   * or a forged one), so it is dropped from `ctx` and the read routed as without it.
   */
  private async confirm(
    { check: node, target, aged }: { check: Node; target: string; aged: boolean },
    ctx: DbContext | undefined,
    exclude: Node | undefined,
  ): Promise<{ node: Node; reason: DbRouteReason }> {
    const lsn = await node.refreshLsn();
    if (lsn !== null && compareWalLsn(lsn, target) >= 0 && !node.ejected) {
      return { node, reason: 'replica' };
    }
    if (ctx !== undefined && ctx.lsn === target && (await this.pastPrimary(target))) {
      ctx.lsn = undefined;
      this.discarded.inc();
      const plan = this.plan(ctx, exclude);
      if (plan.node !== undefined) return plan;
    }
    return { node: this.primary, reason: aged ? 'fallback' : 'lsn' };
  }

  /**
   * True when `lsn` is beyond the primary's WAL insert position. The position is read at most
   * once a second (shared by concurrent callers); positions up to the last one seen need no
   * query. When the primary cannot be asked, the answer is false: the read then goes to the
   * primary, which reports its own failure.
   */
  private async pastPrimary(lsn: string): Promise<boolean> {
    if (this.primaryLsn !== undefined && compareWalLsn(lsn, this.primaryLsn) <= 0) return false;
    const current = (await this.primaryPosition())?.lsn;
    if (current !== undefined && isWalLsn(current)) {
      this.primaryLsn = maxWalLsn(this.primaryLsn, current);
      return compareWalLsn(lsn, current) > 0;
    }
    return false;
  }

  /**
   * The current primary's position and timeline, asked at most once a second (shared by
   * concurrent callers); undefined when not asked this time or when the primary cannot answer.
   */
  private async primaryPosition(): Promise<DbPosition | undefined> {
    if (this.primaryCheck === undefined && performance.now() - this.primaryCheckedAt >= 1000) {
      this.primaryCheckedAt = performance.now();
      const node = this.primary;
      this.primaryCheck = node
        .position()
        .then((pos) => {
          if (pos.inRecovery) {
            this.primaries.markStale(node);
            return undefined;
          }
          if (node === this.primary && pos.timeline !== undefined) {
            this.primaries.timeline = pos.timeline;
            this.lastPosition = { node, pos };
          }
          return pos;
        })
        .catch(() => undefined)
        .finally(() => {
          this.primaryCheck = undefined;
        });
    }
    return this.primaryCheck ? await this.primaryCheck : undefined;
  }

  /**
   * A ctx written on another timeline than the primary's now (a promotion since): its position
   * means nothing on the new timeline, so it becomes the new primary's current position, which
   * every write that survived the promotion is at or before. Reads then go to the new primary
   * until a replica has replayed that far, as after any write.
   */
  private async rebase(ctx: DbContext): Promise<void> {
    // Any position of the new timeline will do (every surviving write is before its start), so
    // the last one asked serves while the next question is rate-limited.
    const last = this.lastPosition?.node === this.primary ? this.lastPosition.pos : undefined;
    const pos = (await this.primaryPosition()) ?? last;
    if (pos?.timeline === undefined || pos.lsn === undefined || !isWalLsn(pos.lsn)) return;
    if (ctx.timeline === pos.timeline) return;
    ctx.lsn = pos.lsn;
    ctx.timeline = pos.timeline;
    this.discarded.inc();
  }

  /** True when `ctx` holds a position from another timeline than the primary's as last known. */
  private needsRebase(ctx: DbContext | undefined): ctx is DbContext {
    return (
      ctx !== undefined &&
      this.ryw !== false &&
      this.ryw.mode === 'lsn' &&
      ctx.lsn !== undefined &&
      typeof ctx.timeline === 'number' &&
      ctx.timeline !== this.primaries.timeline
    );
  }

  /**
   * Runs a write on the primary. When the primary is lost or found in recovery the candidates
   * are asked again; a write that was never sent (no connection, or its client found in
   * recovery first) is sent once to the primary found. A write that may have reached the server
   * is never sent again: its error goes to the caller (SQLSTATE 25006 as BackendUnavailableError
   * with `context.readOnly`).
   */
  private onPrimary<T>(run: (node: Node) => Promise<T>): Promise<T> {
    // The steady state takes no extra await: one promise for the statement, as before.
    if (!this.primaries.isStale) {
      const first = this.primary;
      return run(first).catch((e: unknown) => this.writeFailed(e, first, run));
    }
    return this.primaries
      .discover()
      .then((first) => run(first).catch((e: unknown) => this.writeFailed(e, first, run)));
  }

  /** After a failed write on `first`: see {@link DatabaseRouter.onPrimary}. */
  private async writeFailed<T>(
    e: unknown,
    first: Node,
    run: (node: Node) => Promise<T>,
  ): Promise<T> {
    const inner = e instanceof TxnStartError ? e.error : e;
    if (isReadOnlyRefusal(inner)) {
      this.primaries.markStale(first);
      throw readOnlyRefusal(inner, first.info);
    }
    if (!(inner instanceof BackendUnavailableError)) throw e;
    this.primaries.markStale(first);
    const notSent = e instanceof TxnStartError || writeNotSent(inner);
    if (!notSent || this.primaries.candidates.length === 1) throw e;
    const next = await this.primaries.discover();
    if (next === first && !(inner.context as { readOnly?: boolean }).readOnly) throw e;
    return await run(next);
  }

  private async runRead<R extends QueryResultRow>(
    node: Node,
    reason: DbRouteReason,
    sql: DbQuery,
    params: unknown[] | undefined,
    t0: number,
    retry: boolean,
  ): Promise<RoutedQueryResult<R>> {
    let gated = false;
    if (reason === 'fallback') {
      if (this.gate.limit === 0) {
        throw new BackendUnavailableError(
          'no replica is fit for reads (ejected or lagging) and primaryFallbackLimit is 0',
          { context: { option: 'primaryFallbackLimit', replicas: this.replicas.length } },
        );
      }
      const wait = this.gate.acquire();
      if (wait) await wait;
      gated = true;
    }
    if (reason === 'fallback' || reason === 'lsn' || reason === 'window')
      this.fallbacks[reason].inc();
    try {
      const result = await node.execute<R>(sql, params, false);
      if (this.events.has('query')) this.emitQuery(node, 'read', reason, retry, t0, true);
      return result;
    } catch (e) {
      if (this.events.has('query')) this.emitQuery(node, 'read', reason, retry, t0, false, e);
      throw e;
    } finally {
      if (gated) this.gate.release();
    }
  }

  private async runTransaction<T>(
    node: Node,
    reason: DbRouteReason,
    begin: string,
    fn: (client: PoolClient) => Promise<T>,
    ctx: DbContext | undefined,
    wantLsn: boolean,
    t0: number,
    retry: boolean,
  ): Promise<T> {
    let gated = false;
    if (reason === 'fallback') {
      if (this.gate.limit === 0) {
        throw new BackendUnavailableError(
          'no replica is fit for reads (ejected or lagging) and primaryFallbackLimit is 0',
          { context: { option: 'primaryFallbackLimit' } },
        );
      }
      const wait = this.gate.acquire();
      if (wait) await wait;
      gated = true;
    }
    const write = reason === 'write';
    node.inFlight++;
    let client: PoolClient | undefined;
    let started = false;
    try {
      try {
        client = await node.checkout(write);
        await client.query(begin);
      } catch (e) {
        if (client) node.release(client, e);
        client = undefined;
        throw new TxnStartError(node.failure(e, write));
      }
      started = true;
      let value: T;
      try {
        value = await fn(client);
      } catch (e) {
        await client.query('ROLLBACK').then(
          () => node.release(client as PoolClient),
          (re: unknown) => node.release(client as PoolClient, re),
        );
        client = undefined;
        throw isConnectionError(e) || isServerError(e) ? node.failure(e, write) : e;
      }
      try {
        await client.query('COMMIT');
      } catch (e) {
        node.release(client, e);
        client = undefined;
        throw node.failure(e, write);
      }
      let pos: DbPosition | undefined;
      if (wantLsn) pos = await node.position(client).catch(() => undefined);
      node.release(client);
      client = undefined;
      if (ctx) this.recordWrite(ctx, pos?.lsn, pos?.timeline, node);
      node.served++;
      (write ? node.m.writes : node.m.reads).inc();
      if (this.events.has('query')) this.emitQuery(node, 'transaction', reason, retry, t0, true);
      return value;
    } catch (e) {
      if (this.events.has('query')) {
        this.emitQuery(
          node,
          'transaction',
          reason,
          retry,
          t0,
          false,
          e instanceof TxnStartError ? e.error : e,
        );
      }
      if (started) throw readOnlyViolation(e, node);
      throw e;
    } finally {
      node.inFlight--;
      if (gated) this.gate.release();
    }
  }

  private recordWrite(
    ctx: DbContext,
    lsn: string | undefined,
    timeline: number | undefined,
    node: Node,
  ): void {
    if (this.ryw === false) return;
    ctx.lastWriteAtMs = Date.now();
    if (this.ryw.mode === 'lsn' && lsn !== undefined && isWalLsn(lsn)) {
      if (timeline !== undefined && ctx.timeline !== undefined && ctx.timeline !== timeline) {
        // A position of another timeline does not compare with this one: this write's wins.
        ctx.lsn = lsn;
      } else {
        // The later of the two: concurrent writes of one ctx finish in any order. A position
        // from the future that ctx may hold is caught when a read meets it (see confirm).
        ctx.lsn = maxWalLsn(ctx.lsn, lsn);
      }
      if (timeline !== undefined) ctx.timeline = timeline;
      if (node === this.primary) {
        this.primaryLsn = maxWalLsn(this.primaryLsn, lsn);
        if (timeline !== undefined) this.primaries.timeline = timeline;
      }
    }
  }

  private emitQuery(
    node: Node,
    kind: DbQueryEvent['kind'],
    reason: DbRouteReason,
    retry: boolean,
    t0: number,
    ok: boolean,
    error?: unknown,
  ): void {
    const event: DbQueryEvent = {
      node: node.info,
      kind,
      reason,
      retry,
      duration: (performance.now() - t0) / 1000,
      ok,
    };
    if (!ok) event.error = error;
    this.events.emit('query', event);
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

/** A failure before a transaction's `fn` ran: safe to retry a read-only one elsewhere. */
class TxnStartError extends Error {
  constructor(readonly error: unknown) {
    super('transaction did not start');
  }
}

/** A replica refusing a statement as a write (SQLSTATE 25006) is a routing mistake. */
function readOnlyViolation(e: unknown, node: Node): unknown {
  if (isServerError(e) && e.code === '25006' && node.info.role === 'replica') {
    const err = new QueryRoutingError(
      `a statement that writes was sent as a read and ${node.info.name} refused it: ${e.message}`,
      { cause: e, context: { ...node.info, sqlstate: e.code } },
    );
    return attachNode(err, node.info);
  }
  return e;
}

function checkQuery(sql: unknown): string {
  if (typeof sql === 'string' && sql.length > 0) return sql;
  if (
    typeof sql === 'object' &&
    sql !== null &&
    typeof (sql as { text?: unknown }).text === 'string' &&
    (sql as { text: string }).text.length > 0
  ) {
    return (sql as { text: string }).text;
  }
  throw new ValidationError(
    `sql must be a non-empty string or a pg QueryConfig { text, values }, received ${describeValue(sql)}`,
    { option: 'sql' },
  );
}

function checkParams(params: unknown): void {
  if (params !== undefined && !Array.isArray(params)) {
    throw new ValidationError(`params must be an array, received ${describeValue(params)}`, {
      option: 'params',
    });
  }
}

/** How far ahead of this machine's clock a ctx's write time may be (another machine's clock). */
const CLOCK_SKEW_MS = 5000;

function checkCtx(ctx: unknown): void {
  if (ctx === undefined) return;
  if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx)) {
    throw new ValidationError(
      `ctx must be a plain object (start with {} and keep it per user or session), received ${describeValue(ctx)}`,
      { option: 'ctx' },
    );
  }
  const c = ctx as DbContext;
  if (c.lsn !== undefined && !isWalLsn(c.lsn)) {
    throw new ValidationError(
      `ctx.lsn must be a pg_lsn like '0/3000148', received ${describeValue(c.lsn)}`,
      {
        option: 'ctx.lsn',
      },
    );
  }
  if (
    c.timeline !== undefined &&
    (typeof c.timeline !== 'number' || !Number.isInteger(c.timeline) || c.timeline < 1)
  ) {
    throw new ValidationError(
      `ctx.timeline must be a PostgreSQL timeline ID (a positive integer), received ${describeValue(c.timeline)}`,
      { option: 'ctx.timeline' },
    );
  }
  if (
    c.lastWriteAtMs !== undefined &&
    (typeof c.lastWriteAtMs !== 'number' || !Number.isFinite(c.lastWriteAtMs))
  ) {
    throw new ValidationError(
      `ctx.lastWriteAtMs must be epoch milliseconds, received ${describeValue(c.lastWriteAtMs)}`,
      { option: 'ctx.lastWriteAtMs' },
    );
  }
}

function describeSql(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > 60 ? `${one.slice(0, 57)}...` : one;
}
