import { BackendUnavailableError, isBackendUnavailableError } from '../core/errors.js';
import { isPgServerError } from '../core/backend-errors.js';
import type { DbNode } from './node.js';
import type { DbNodeInfo } from './node-info.js';

/** What one candidate said when asked whether it takes writes. */
interface Probe {
  node: DbNode;
  inRecovery?: boolean;
  timeline?: number;
  lsn?: string;
  error?: string;
}

/**
 * The primary candidates of a router and which of them is the primary now. After anything that
 * says the topology may have moved (the primary unreachable, in recovery, or refusing a write
 * with SQLSTATE 25006) the set is marked stale: every candidate's clients must prove they are out
 * of recovery again before their next write, and the next write first asks every candidate
 * `pg_is_in_recovery()` (libpq's `target_session_attrs=read-write`, over a list of hosts).
 */
export class PrimarySet {
  /** The candidate writes go to now. */
  current: DbNode;
  /** Timeline of the current primary when known (from discovery or a write's position). */
  timeline: number | undefined;
  private stale: boolean;
  private discovery: Promise<DbNode> | undefined;

  constructor(
    readonly candidates: readonly DbNode[],
    private readonly probeTimeoutMs: number,
    private readonly onSwitch: (from: DbNode, to: DbNode) => void,
  ) {
    this.current = candidates[0] as DbNode;
    for (const c of candidates) c.guardWrites = true;
    // With several candidates the first write finds out which one is writable; with one there
    // is nothing to choose (its clients are still checked before they get a write).
    this.stale = candidates.length > 1;
  }

  /** True when the next write must find the primary first. */
  get isStale(): boolean {
    return this.stale;
  }

  /** The node for the next write: the current one, or the one discovery finds. */
  forWrite(): DbNode | Promise<DbNode> {
    return this.stale ? this.discover() : this.current;
  }

  /**
   * The topology may have changed (seen on `node`): re-check clients before writes and, with
   * several candidates, find the primary again before the next write.
   */
  markStale(node: DbNode): void {
    if (node !== this.current) return;
    for (const c of this.candidates) c.writeGen++;
    if (this.candidates.length > 1) this.stale = true;
  }

  /**
   * Asks every candidate whether it is in recovery and takes the one that is not (the highest
   * timeline if several say so: an old primary restarted without being turned into a standby).
   * Concurrent callers share one round. Fails with BackendUnavailableError when none is
   * writable; the set stays stale, so the next write asks again.
   */
  discover(): Promise<DbNode> {
    if (this.candidates.length === 1) return Promise.resolve(this.current);
    this.discovery ??= this.runDiscovery().finally(() => {
      this.discovery = undefined;
    });
    return this.discovery;
  }

  /**
   * Runs a write on the primary. When the primary is lost or found in recovery the candidates
   * are asked again; a write that was never sent (no connection, or its client found in
   * recovery first) is sent once to the primary found. A write that may have reached the server
   * is never sent again: its error goes to the caller (SQLSTATE 25006 as BackendUnavailableError
   * with `context.readOnly`).
   */
  run<T>(run: (node: DbNode) => Promise<T>): Promise<T> {
    // The steady state takes no extra await: one promise for the statement, as before.
    if (!this.stale) {
      const first = this.current;
      return run(first).catch((e: unknown) => this.writeFailed(e, first, run));
    }
    return this.discover().then((first) =>
      run(first).catch((e: unknown) => this.writeFailed(e, first, run)),
    );
  }

  /** After a failed write on `first`: see {@link PrimarySet.run}. */
  private async writeFailed<T>(
    e: unknown,
    first: DbNode,
    run: (node: DbNode) => Promise<T>,
  ): Promise<T> {
    const inner = e instanceof TxnStartError ? e.error : e;
    if (isReadOnlyRefusal(inner)) {
      this.markStale(first);
      throw readOnlyRefusal(inner, first.info);
    }
    if (!(inner instanceof BackendUnavailableError)) throw e;
    this.markStale(first);
    const notSent = e instanceof TxnStartError || writeNotSent(inner);
    if (!notSent || this.candidates.length === 1) throw e;
    const next = await this.discover();
    if (next === first && !(inner.context as { readOnly?: boolean }).readOnly) throw e;
    return await run(next);
  }

  private async runDiscovery(): Promise<DbNode> {
    const probes = await Promise.all(this.candidates.map((n) => this.probe(n)));
    let best: Probe | undefined;
    for (const p of probes) {
      if (p.inRecovery !== false) continue;
      if (
        best === undefined ||
        (p.timeline ?? 0) > (best.timeline ?? 0) ||
        ((p.timeline ?? 0) === (best.timeline ?? 0) && p.node === this.current)
      ) {
        best = p;
      }
    }
    if (best === undefined) {
      throw new BackendUnavailableError(
        `no PostgreSQL primary candidate takes writes: ${probes.map(describeProbe).join('; ')}`,
        {
          context: {
            candidates: probes.map((p) => ({
              ...p.node.info,
              inRecovery: p.inRecovery ?? null,
              error: p.error ?? null,
            })),
          },
        },
      );
    }
    const from = this.current;
    this.current = best.node;
    this.timeline = best.timeline;
    this.stale = false;
    if (from !== best.node) this.onSwitch(from, best.node);
    return best.node;
  }

  private async probe(node: DbNode): Promise<Probe> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.probeTimeoutMs} ms`)),
        this.probeTimeoutMs,
      );
      timer.unref?.();
    });
    const ask = node.position();
    try {
      const pos = await Promise.race([ask, timeout]);
      node.inRecovery = pos.inRecovery;
      return { node, inRecovery: pos.inRecovery, timeline: pos.timeline, lsn: pos.lsn };
    } catch (e) {
      ask.catch(() => {});
      return { node, error: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A failure before a transaction's `fn` ran: safe to retry a read-only one elsewhere. */
export class TxnStartError extends Error {
  constructor(readonly error: unknown) {
    super('transaction did not start');
  }
}

function describeProbe(p: Probe): string {
  const where = `${p.node.info.name} (${p.node.info.host}:${p.node.info.port})`;
  if (p.error !== undefined) return `${where} unreachable: ${p.error}`;
  return `${where} in recovery`;
}

/** True for SQLSTATE 25006 (`read_only_sql_transaction`): the server refused a write. */
export function isReadOnlyRefusal(e: unknown): boolean {
  return isPgServerError(e) && e.code === '25006';
}

/**
 * True when the write behind `e` was never sent (no connection, or the client was found in
 * recovery before the statement): it may be sent to another node without being applied twice.
 */
export function writeNotSent(e: unknown): boolean {
  return (
    isBackendUnavailableError(e) &&
    (e as { context?: { connect?: unknown } }).context?.connect === true
  );
}

/** The typed error of a write a node refused with 25006 (it was not applied). */
export function readOnlyRefusal(e: unknown, node: DbNodeInfo): BackendUnavailableError {
  const message = e instanceof Error ? e.message : String(e);
  const err = new BackendUnavailableError(
    `PostgreSQL ${node.name} (${node.host}:${node.port}) refused a write as read-only (SQLSTATE 25006: ${message}); it is not retried, the router looks for the primary again`,
    { cause: e, context: { ...node, sqlState: '25006', readOnly: true, connect: false } },
  );
  Object.assign(err, { node });
  return err;
}
