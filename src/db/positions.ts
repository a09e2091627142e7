/**
 * Read-your-writes positions: what a caller's ctx asks of a read (the primary within the
 * `window`, or a WAL position a replica must have replayed), recording a write's position in
 * ctx, and the primary's own position, which catches positions no replica can ever reach (from
 * before a restore or a promotion, or forged).
 */
import type { CounterHandle } from '../core/metrics.js';
import { CLOCK_SKEW_MS } from './checks.js';
import { compareWalLsn, isWalLsn, maxWalLsn } from './lsn.js';
import type { DbNode, DbPosition } from './node.js';
import type { ReadYourWrites } from './options.js';
import type { PrimarySet } from './primary.js';
import type { DbContext } from './types.js';

/**
 * What a ctx asks of a read: nothing, the primary (`window`: it wrote within the window), or a
 * position a replica must have replayed (`aged`: written longer than `maxAge` ago, so the
 * primary serves it only as a fallback).
 */
export type ReadTarget = undefined | 'window' | { lsn: string; aged: boolean };

/** The read-your-writes state of one router. */
export class WritePositions {
  private readonly windowMs: number;
  private readonly lsnMaxAgeMs: number;
  private primaryCheck: Promise<DbPosition | undefined> | undefined;
  // performance.now() of the last primary position query. Not 0: performance.now() counts from
  // the process's (or worker thread's) start, so a router made within its first second would
  // otherwise skip its first check.
  private primaryCheckedAt = Number.NEGATIVE_INFINITY;
  private primaryLsn: string | undefined;
  /** The last position the current primary gave {@link WritePositions.primaryPosition}. */
  private lastPosition: { node: DbNode; pos: DbPosition } | undefined;

  constructor(
    readonly ryw: ReadYourWrites,
    private readonly primaries: PrimarySet,
    private readonly discarded: CounterHandle,
  ) {
    this.windowMs = ryw && ryw.mode === 'window' ? ryw.seconds * 1000 : 0;
    this.lsnMaxAgeMs = ryw && ryw.mode === 'lsn' ? (ryw.maxAge ?? 30) * 1000 : 0;
  }

  /** True when a write of `ctx` should read the primary's position back (`lsn` mode). */
  wantsLsn(ctx: DbContext | undefined): boolean {
    return ctx !== undefined && this.ryw !== false && this.ryw.mode === 'lsn';
  }

  /** Positions of the old primary say nothing about the new one. */
  forgetPrimary(): void {
    this.primaryLsn = undefined;
  }

  /** What `ctx` asks of a read now (no I/O); fixes a write time set in the future. */
  readTarget(ctx: DbContext | undefined): ReadTarget {
    if (ctx === undefined || this.ryw === false) return undefined;
    const now = Date.now();
    let at = ctx.lastWriteAtMs;
    if (typeof at === 'number' && at > now + CLOCK_SKEW_MS) {
      // A write time in the future (a forged ctx, a clock set back) would pin this ctx for as
      // long as it stays ahead: take it as a write just now, which ages like any other.
      ctx.lastWriteAtMs = at = now;
      this.discarded.inc();
    }
    if (this.ryw.mode === 'window') {
      return typeof at === 'number' && now - at < this.windowMs ? 'window' : undefined;
    }
    if (ctx.lsn === undefined) return undefined;
    // A position no replica has replayed maxAge after its write (a stuck or rebuilt replica)
    // still reads from the primary, but as a fallback within primaryFallbackLimit: a ctx must
    // not hold reads on the primary outside that limit for good. A ctx without a write time
    // gets one now, so its position ages too.
    if (typeof at !== 'number') ctx.lastWriteAtMs = at = now;
    return { lsn: ctx.lsn, aged: now - at >= this.lsnMaxAgeMs };
  }

  /**
   * Drops `target` from `ctx` when it is past the primary's own position (no replica can ever
   * reach it); true when it did.
   */
  async dropUnreachable(ctx: DbContext | undefined, target: string): Promise<boolean> {
    if (ctx === undefined || ctx.lsn !== target || !(await this.pastPrimary(target))) return false;
    ctx.lsn = undefined;
    this.discarded.inc();
    return true;
  }

  /** True when `ctx` holds a position from another timeline than the primary's as last known. */
  needsRebase(ctx: DbContext | undefined): ctx is DbContext {
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
   * A ctx written on another timeline than the primary's now (a promotion since): its position
   * means nothing on the new timeline, so it becomes the new primary's current position, which
   * every write that survived the promotion is at or before. Reads then go to the new primary
   * until a replica has replayed that far, as after any write.
   */
  async rebase(ctx: DbContext): Promise<void> {
    // Any position of the new timeline will do (every surviving write is before its start), so
    // the last one asked serves while the next question is rate-limited.
    const current = this.primaries.current;
    const last = this.lastPosition?.node === current ? this.lastPosition.pos : undefined;
    const pos = (await this.primaryPosition()) ?? last;
    if (pos?.timeline === undefined || pos.lsn === undefined || !isWalLsn(pos.lsn)) return;
    if (ctx.timeline === pos.timeline) return;
    ctx.lsn = pos.lsn;
    ctx.timeline = pos.timeline;
    this.discarded.inc();
  }

  /** Records a write on `node` in `ctx` (its time, and in `lsn` mode its position). */
  record(
    ctx: DbContext,
    lsn: string | undefined,
    timeline: number | undefined,
    node: DbNode,
  ): void {
    if (this.ryw === false) return;
    ctx.lastWriteAtMs = Date.now();
    if (this.ryw.mode === 'lsn' && lsn !== undefined && isWalLsn(lsn)) {
      if (timeline !== undefined && ctx.timeline !== undefined && ctx.timeline !== timeline) {
        // A position of another timeline does not compare with this one: this write's wins.
        ctx.lsn = lsn;
      } else {
        // The later of the two: concurrent writes of one ctx finish in any order. A position
        // from the future that ctx may hold is caught when a read meets it (see dropUnreachable).
        ctx.lsn = maxWalLsn(ctx.lsn, lsn);
      }
      if (timeline !== undefined) ctx.timeline = timeline;
      if (node === this.primaries.current) {
        this.primaryLsn = maxWalLsn(this.primaryLsn, lsn);
        if (timeline !== undefined) this.primaries.timeline = timeline;
      }
    }
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
      const node = this.primaries.current;
      this.primaryCheck = node
        .position()
        .then((pos) => {
          if (pos.inRecovery) {
            this.primaries.markStale(node);
            return undefined;
          }
          if (node === this.primaries.current && pos.timeline !== undefined) {
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
}
