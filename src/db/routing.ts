/**
 * Where a read goes: round-robin over the replicas that are up, within `maxReplicaLag` and (for
 * a ctx with a position) far enough along, else the primary, with the reason it was chosen.
 */
import { compareWalLsn } from './lsn.js';
import type { DbNode } from './node.js';
import type { WritePositions } from './positions.js';
import type { PrimarySet } from './primary.js';
import type { DbContext, DbRouteReason } from './types.js';

/** A read node chosen, with its reason. */
export type Chosen = { node: DbNode; reason: DbRouteReason };

/**
 * A read node chosen from what is known now, or (`check`) a replica whose replay position must
 * be confirmed first against `target`; `aged`: the target is older than `maxAge`, so the
 * primary then serves it as a fallback.
 */
export type Plan =
  | { node: DbNode; reason: DbRouteReason; check?: undefined }
  | { check: DbNode; target: string; aged: boolean; node?: undefined };

/** Chooses the node of each read of one router. */
export class ReadPlanner {
  private rr = 0;

  constructor(
    private readonly replicas: readonly DbNode[],
    private readonly primaries: PrimarySet,
    private readonly positions: WritePositions,
    private readonly maxLag: number | undefined,
  ) {}

  /**
   * Picks a read node from what is known now (no I/O). In `lsn` mode, when the fit replica's
   * known replay position is short of `ctx.lsn`, asks the caller to confirm it with one query.
   */
  plan(ctx: DbContext | undefined, exclude: DbNode | undefined): Plan {
    const n = this.replicas.length;
    if (n === 0) return { node: this.primaries.current, reason: 'no-replicas' };
    const want = this.positions.readTarget(ctx);
    if (want === 'window') return { node: this.primaries.current, reason: 'window' };
    const target = want?.lsn;
    const now = performance.now();
    const start = this.rr;
    this.rr = start + 1 >= n ? 0 : start + 1;
    let behind: DbNode | undefined;
    for (let i = 0; i < n; i++) {
      const r = this.replicas[(start + i) % n] as DbNode;
      if (r === exclude || !r.available(now)) continue;
      if (this.maxLag !== undefined && r.lag !== null && r.lag > this.maxLag) continue;
      if (target !== undefined && (r.lsn === null || compareWalLsn(r.lsn, target) < 0)) {
        behind ??= r;
        continue;
      }
      return { node: r, reason: 'replica' };
    }
    if (behind && want !== undefined) return { check: behind, target: want.lsn, aged: want.aged };
    return { node: this.primaries.current, reason: 'fallback' };
  }

  /**
   * Asks a replica for its replay position; it serves the read only if it has reached `target`.
   * Otherwise the read goes to the primary, unless `target` is past the primary's own position:
   * no replica can ever reach such a position (a ctx from before a restore or a timeline switch,
   * or a forged one), so it is dropped from `ctx` and the read routed as without it.
   */
  async confirm(
    { check: node, target, aged }: { check: DbNode; target: string; aged: boolean },
    ctx: DbContext | undefined,
    exclude: DbNode | undefined,
  ): Promise<Chosen> {
    const lsn = await node.refreshLsn();
    if (lsn !== null && compareWalLsn(lsn, target) >= 0 && !node.ejected) {
      return { node, reason: 'replica' };
    }
    if (await this.positions.dropUnreachable(ctx, target)) {
      const plan = this.plan(ctx, exclude);
      if (plan.node !== undefined) return plan;
    }
    return { node: this.primaries.current, reason: aged ? 'fallback' : 'lsn' };
  }

  /** The node a read goes to, confirming a replica's position first when the plan asks to. */
  async choose(ctx: DbContext | undefined, exclude: DbNode | undefined): Promise<Chosen> {
    const plan = this.plan(ctx, exclude);
    return plan.check ? this.confirm(plan, ctx, exclude) : plan;
  }
}
