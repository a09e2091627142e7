/**
 * Runs statements and transactions on the node routing chose: the fallback limit on the
 * primary, the one retry of a read whose replica could not be reached, read-your-writes
 * recording after a commit, and the `query` event.
 */
import type { PoolClient, QueryResultRow } from 'pg';
import { BackendUnavailableError, QueryRoutingError } from '../core/errors.js';
import type { Emitter } from '../core/events.js';
import type { CounterHandle } from '../core/metrics.js';
import type { SpanHandle } from '../core/trace.js';
import { isPgConnectionError, isPgServerError } from '../core/backend-errors.js';
import type { Gate } from './gate.js';
import type { DbNode, DbPosition } from './node.js';
import { type DbQuery, attachNode } from './node-info.js';
import type { WritePositions } from './positions.js';
import { type PrimarySet, TxnStartError } from './primary.js';
import type { Plan, ReadPlanner } from './routing.js';
import type {
  DatabaseRouterEvents,
  DbContext,
  DbQueryEvent,
  DbRouteReason,
  RoutedQueryResult,
} from './types.js';

/** What a {@link StatementRunner} works with, owned by its router. */
export interface RunnerParts {
  gate: Gate;
  events: Emitter<DatabaseRouterEvents>;
  positions: WritePositions;
  planner: ReadPlanner;
  primaries: PrimarySet;
  fallbacks: Record<'fallback' | 'lsn' | 'window', CounterHandle>;
  retries: CounterHandle;
  replicaCount: number;
}

/** The statements and transactions of one router. */
export class StatementRunner {
  private readonly gate: Gate;
  private readonly events: Emitter<DatabaseRouterEvents>;
  private readonly positions: WritePositions;
  private readonly planner: ReadPlanner;
  private readonly primaries: PrimarySet;
  private readonly fallbacks: RunnerParts['fallbacks'];
  private readonly retries: CounterHandle;
  private readonly replicaCount: number;

  constructor(parts: RunnerParts) {
    this.gate = parts.gate;
    this.events = parts.events;
    this.positions = parts.positions;
    this.planner = parts.planner;
    this.primaries = parts.primaries;
    this.fallbacks = parts.fallbacks;
    this.retries = parts.retries;
    this.replicaCount = parts.replicaCount;
  }

  /** A read whose plan may need its replica confirmed, or that may emit `query`. */
  async readRouted<R extends QueryResultRow>(
    first: Plan,
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
    t0: number,
  ): Promise<RoutedQueryResult<R>> {
    const plan = first.check ? await this.planner.confirm(first, ctx, undefined) : first;
    try {
      return await this.runRead<R>(plan.node, plan.reason, sql, params, t0, false);
    } catch (e) {
      return this.readFailed<R>(e, plan.node, sql, params, ctx, t0);
    }
  }

  /** A write that records its position in `ctx` or emits `query`. */
  async writeRouted<R extends QueryResultRow>(
    sql: DbQuery,
    params: unknown[] | undefined,
    ctx: DbContext | undefined,
    wantLsn: boolean,
  ): Promise<RoutedQueryResult<R>> {
    const t0 = performance.now();
    let node = this.primaries.current;
    try {
      return await this.primaries.run(async (n) => {
        node = n;
        let result: RoutedQueryResult<R>;
        let lsn: string | undefined;
        let timeline: number | undefined;
        if (wantLsn) ({ result, lsn, timeline } = await n.executeWithLsn<R>(sql, params));
        else result = await n.execute<R>(sql, params, true);
        if (ctx) this.positions.record(ctx, lsn, timeline, n);
        if (this.events.has('query')) this.emitQuery(n, 'write', 'write', false, t0, true);
        return result;
      });
    } catch (e) {
      if (this.events.has('query')) this.emitQuery(node, 'write', 'write', false, t0, false, e);
      throw e;
    }
  }

  /**
   * A transaction that is not read-only: on the primary (found again and retried there when it
   * could not start), recorded in `ctx` on commit.
   */
  async writeTransaction<T>(
    begin: string,
    fn: (client: PoolClient) => Promise<T>,
    ctx: DbContext | undefined,
    span: SpanHandle,
  ): Promise<T> {
    const t0 = performance.now();
    const wantLsn = this.positions.wantsLsn(ctx);
    try {
      return await this.primaries.run((node) => {
        span.setAttribute('azscale.db.node', node.info.name);
        return this.runTransaction(node, 'write', begin, fn, ctx, wantLsn, t0, false);
      });
    } catch (e) {
      throw e instanceof TxnStartError ? e.error : e;
    }
  }

  /**
   * A read-only transaction on a read node chosen as for a read; retried once on another node
   * when its replica could not be reached before `fn` started.
   */
  async readOnlyTransaction<T>(
    begin: string,
    fn: (client: PoolClient) => Promise<T>,
    ctx: DbContext | undefined,
    span: SpanHandle,
  ): Promise<T> {
    const t0 = performance.now();
    if (this.positions.needsRebase(ctx)) await this.positions.rebase(ctx);
    const first = await this.planner.choose(ctx, undefined);
    span.setAttribute('azscale.db.node', first.node.info.name);
    try {
      return await this.runTransaction(
        first.node,
        first.reason,
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
        first.node.info.role !== 'replica'
      ) {
        throw e instanceof TxnStartError ? e.error : e;
      }
      this.retries.inc();
      if (this.events.has('retry'))
        this.events.emit('retry', { from: first.node.info, error: e.error });
      const second = await this.planner.choose(ctx, first.node);
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

  /** After a failed read: SQL errors pass, a replica's connection failure gets one retry. */
  async readFailed<R extends QueryResultRow>(
    e: unknown,
    node: DbNode,
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
    const second = await this.planner.choose(ctx, node);
    try {
      return await this.runRead<R>(second.node, second.reason, sql, params, t0, true);
    } catch (e2) {
      throw readOnlyViolation(e2, second.node);
    }
  }

  async runRead<R extends QueryResultRow>(
    node: DbNode,
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
          { context: { option: 'primaryFallbackLimit', replicas: this.replicaCount } },
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

  async runTransaction<T>(
    node: DbNode,
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
        throw isPgConnectionError(e) || isPgServerError(e) ? node.failure(e, write) : e;
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
      if (ctx) this.positions.record(ctx, pos?.lsn, pos?.timeline, node);
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

  emitQuery(
    node: DbNode,
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
}

/** A replica refusing a statement as a write (SQLSTATE 25006) is a routing mistake. */
export function readOnlyViolation(e: unknown, node: DbNode): unknown {
  if (isPgServerError(e) && e.code === '25006' && node.info.role === 'replica') {
    const err = new QueryRoutingError(
      `a statement that writes was sent as a read and ${node.info.name} refused it: ${e.message}`,
      { cause: e, context: { ...node.info, sqlstate: e.code } },
    );
    return attachNode(err, node.info);
  }
  return e;
}
