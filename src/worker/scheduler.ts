import type { SubmitTaskOptions } from './types.js';
import { type ScheduleDef, planTicks, tickTaskId } from './schedule.js';
import type { ScheduleStore } from './schedule-store.js';

/** What the scheduler needs of a queue (a narrow view of {@link TaskQueue}). @internal */
export interface SchedulerQueue {
  readonly scheduleStore: ScheduleStore | undefined;
  submitTask(data: unknown, options: SubmitTaskOptions): Promise<string>;
  readonly isClosed: boolean;
}

/**
 * Longest sleep between rounds (ms): a schedule added or moved earlier by another process is
 * seen within this time. A schedule upserted through the same queue object wakes it at once.
 */
export const SCHEDULER_POLL_MS = 1000;
/** Due schedules (and pending ticks) handled per round. */
const BATCH = 100;
/** Pause after a failed round (Redis down), ms. */
const ERROR_PAUSE_MS = 1000;

/**
 * Turns due schedules into tasks. One per queue object, shared by the {@link BackgroundWorker}s
 * on it; any number of them in any number of processes may run against one queue: the store's
 * compare-and-set lets one commit each tick, the tick's fixed task id makes its submit
 * idempotent (see {@link ScheduleStore}).
 * @internal
 */
export class Scheduler {
  private running = false;
  private wakeUp: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private readonly errorListeners = new Set<(e: unknown) => void>();
  /** Submits refused in the current round (their ticks stay pending). */
  private failedSubmits = 0;

  constructor(
    private readonly queue: SchedulerQueue,
    private readonly store: ScheduleStore,
  ) {}

  /** Listens for round errors (the worker re-emits them as its `error` event). */
  onError(fn: (e: unknown) => void): () => void {
    this.errorListeners.add(fn);
    return () => this.errorListeners.delete(fn);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loopDone;
  }

  /** Ends the current sleep (a local upsert may have moved a next run earlier). */
  wake(): void {
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    while (this.running && !this.queue.isClosed) {
      let waitMs = SCHEDULER_POLL_MS;
      try {
        waitMs = await this.round();
      } catch (e) {
        this.report(e);
        waitMs = ERROR_PAUSE_MS;
      }
      if (!this.running) break;
      if (waitMs > 0) await this.sleep(waitMs);
    }
  }

  /** One round; returns how long to sleep before the next. */
  private async round(): Promise<number> {
    const now = Date.now();
    const r = await this.store.due(now, BATCH);
    // A schedule whose pending tick is refused (e.g. the queue is full) commits no new ticks
    // until it goes through: they would pile up as pending. They count as missed once late.
    const blocked = new Set<string>();
    for (const p of r.pending) {
      if (!(await this.submitTick(p.def, p.id, p.tick))) blocked.add(p.id);
    }
    let committed = 0;
    for (const d of r.due) {
      if (!this.running) return 0;
      if (blocked.has(d.id)) continue;
      const def = JSON.parse(d.def) as ScheduleDef;
      const plan = planTicks(def, d.next, Date.now());
      if (!(await this.store.advance(d.id, d.next, d.def, plan.next, plan.fire))) continue;
      committed++;
      for (const tick of plan.fire) await this.submitTick(d.def, d.id, tick);
    }
    if (this.failedSubmits > 0) {
      // Ticks whose submit was refused (e.g. the queue is full) stay pending: retried next round.
      this.failedSubmits = 0;
      return ERROR_PAUSE_MS;
    }
    if (committed > 0 || r.due.length >= BATCH || r.pending.length >= BATCH) return 0;
    if (r.earliest === null) return SCHEDULER_POLL_MS;
    return Math.min(SCHEDULER_POLL_MS, Math.max(0, r.earliest - Date.now()));
  }

  /** Submits a pending tick's task and drops it from the pending list; false when refused. */
  private async submitTick(defJson: string, id: string, tick: number): Promise<boolean> {
    const def = JSON.parse(defJson) as ScheduleDef;
    const opts: SubmitTaskOptions = { taskId: tickTaskId(id, tick) };
    if (def.name !== undefined) opts.name = def.name;
    if (def.priority !== undefined) opts.priority = def.priority;
    if (def.attempts !== undefined) opts.attempts = def.attempts;
    if (def.timeout !== undefined) opts.timeout = def.timeout;
    try {
      await this.queue.submitTask(JSON.parse(def.data), opts);
    } catch (e) {
      // One refused tick must not hold up the other schedules; it stays pending.
      this.failedSubmits++;
      this.report(e);
      return false;
    }
    await this.store.donePending(id, tick);
    return true;
  }

  private report(e: unknown): void {
    for (const fn of this.errorListeners) fn(e);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      // Unref'd: a scheduler alone never keeps a process alive (the worker's own loop does).
      const timer = setTimeout(done, ms);
      timer.unref();
      this.wakeUp = done;
    });
  }
}

const shared = new WeakMap<object, { scheduler: Scheduler; users: number }>();

/**
 * The scheduler of `queue`, started on first use; {@link releaseScheduler} stops it when its last
 * user (a worker) is gone. Null when the queue has no schedule store (a custom backend).
 * @internal
 */
export function acquireScheduler(queue: SchedulerQueue): Scheduler | null {
  const store = queue.scheduleStore;
  if (!store) return null;
  let entry = shared.get(queue);
  if (!entry) {
    entry = { scheduler: new Scheduler(queue, store), users: 0 };
    shared.set(queue, entry);
  }
  entry.users++;
  entry.scheduler.start();
  return entry.scheduler;
}

/** @internal */
export async function releaseScheduler(queue: SchedulerQueue): Promise<void> {
  const entry = shared.get(queue);
  if (!entry) return;
  if (--entry.users > 0) return;
  shared.delete(queue);
  await entry.scheduler.stop();
}

/** Wakes the running scheduler of `queue`, if any (after a local upsert). @internal */
export function wakeScheduler(queue: object): void {
  shared.get(queue)?.scheduler.wake();
}
