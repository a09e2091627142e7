import type { TaskRecord } from './backend.js';
import { MemoryEventLog } from './memory-events.js';
import { TERMINAL } from './task-status.js';

/** @internal A task as the memory backend keeps it. */
export interface MemTask extends TaskRecord {
  /** Current delivery (undefined while delayed or finished). */
  entryId?: string;
  lane: number;
  seq: number;
  dueAt?: number;
  expiresAt?: number;
  /** The submitter's `traceparent`. */
  trace?: string;
  /** Flow: the parent's id. */
  fp?: string;
  /** Flow: the parent goes on when this task fails. */
  fi?: boolean;
  /** Flow: the direct children's ids. */
  fc?: string[];
  /** Flow: children not finished yet. */
  fw?: number;
}

/** @internal A delivery a worker holds. */
export interface Held {
  id: string;
  lane: number;
  consumer: string;
  leaseAt: number;
}

/** @internal The state one queue name has in this process; shared by every handle of that name. */
export class MemoryQueueState {
  readonly tasks = new Map<string, MemTask>();
  /** Waiting deliveries in FIFO order: entryId -> task id. */
  readonly ready = new Map<string, string>();
  /** Waiting prioritized tasks, best first: [priority desc, seq asc]. */
  prio: { id: string; priority: number; seq: number }[] = [];
  /** Delayed tasks by due time. */
  delayed: { id: string; at: number }[] = [];
  /** Delivered, unacknowledged entries (the pending list). */
  readonly held = new Map<string, Held>();
  readonly dead = new Map<string, number>();
  /** Flow parents put in `waiting-children` (pruned of those that moved on when counted). */
  readonly parents = new Set<string>();
  /** Finished tasks in finishing order with their expiry. */
  expiry: { id: string; at: number }[] = [];
  completed = 0;
  failed = 0;
  seq = 0;
  refs = 0;
  /** The fleet-wide (here: process-wide) pause flag. */
  paused = false;
  /** Start times (ms) inside the rate-limit window, oldest first. */
  rateLog: number[] = [];
  readonly workWaiters = new Set<() => void>();
  readonly settleWaiters = new Map<string, Set<() => void>>();
  readonly events = new MemoryEventLog();
  /**
   * Called once a task reached a terminal state (the flow rules, memory-flows.ts, set by the
   * backend: a hook rather than an import keeps this file free of a cycle with the flows).
   */
  onFinished: ((s: MemoryQueueState, t: MemTask, now: number, ttlMs: number) => void) | undefined;

  /** Parents still in `waiting-children`; forgets the ones that moved on. */
  countWaitingParents(): number {
    for (const id of this.parents) {
      if (this.tasks.get(id)?.status !== 'waiting-children') this.parents.delete(id);
    }
    return this.parents.size;
  }

  nextEntry(): string {
    return String(++this.seq);
  }

  notifyWork(): void {
    for (const w of [...this.workWaiters]) w();
  }

  settled(id: string): void {
    const set = this.settleWaiters.get(id);
    if (set) for (const w of [...set]) w();
  }

  enqueue(t: MemTask, now: number): void {
    t.dueAt = undefined;
    t.status = 'queued';
    t.updatedAt = now;
    const entry = this.nextEntry();
    t.entryId = entry;
    if (t.priority > 0) {
      t.lane = 1;
      const item = { id: t.id, priority: t.priority, seq: this.seq };
      // Binary insert keeps the list ordered; equal priorities keep submit order.
      let lo = 0;
      let hi = this.prio.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const m = this.prio[mid] as (typeof this.prio)[number];
        if (m.priority > item.priority || (m.priority === item.priority && m.seq < item.seq)) {
          lo = mid + 1;
        } else hi = mid;
      }
      this.prio.splice(lo, 0, item);
    } else {
      t.lane = 0;
      this.ready.set(entry, t.id);
    }
  }

  delay(t: MemTask, at: number, now: number): void {
    t.status = 'delayed';
    t.updatedAt = now;
    t.entryId = undefined;
    t.dueAt = at;
    let lo = 0;
    let hi = this.delayed.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.delayed[mid] as { at: number }).at <= at) lo = mid + 1;
      else hi = mid;
    }
    this.delayed.splice(lo, 0, { id: t.id, at });
  }

  finish(t: MemTask, now: number, ttlMs: number): void {
    t.updatedAt = now;
    t.entryId = undefined;
    t.expiresAt = now + ttlMs;
    this.expiry.push({ id: t.id, at: t.expiresAt });
    this.events.push({
      kind: t.status,
      taskId: t.id,
      attempt: t.attempts,
      ...(t.status === 'completed' ? { result: t.result ?? 'null' } : {}),
      ...(t.status === 'failed' ? { error: t.error ?? '' } : {}),
    });
    this.onFinished?.(this, t, now, ttlMs);
    this.settled(t.id);
  }

  sweep(now: number): void {
    let i = 0;
    while (i < this.expiry.length && (this.expiry[i] as { at: number }).at <= now) {
      const { id, at } = this.expiry[i] as { id: string; at: number };
      const t = this.tasks.get(id);
      // A redriven task got a new life; only the expiry that matches the current one counts.
      if (t && t.expiresAt === at && TERMINAL.has(t.status)) {
        this.tasks.delete(id);
        this.dead.delete(id);
      }
      i++;
    }
    if (i > 0) this.expiry = this.expiry.slice(i);
  }

  promote(now: number): void {
    let i = 0;
    while (i < this.delayed.length && (this.delayed[i] as { at: number }).at <= now) {
      const { id, at } = this.delayed[i] as { id: string; at: number };
      const t = this.tasks.get(id);
      if (t && t.status === 'delayed' && t.dueAt === at) this.enqueue(t, now);
      i++;
    }
    if (i > 0) this.delayed = this.delayed.slice(i);
  }

  ack(entryId: string): void {
    this.held.delete(entryId);
  }

  /** Tasks waiting (queued or delayed): what `maxQueued` bounds. */
  waiting(): number {
    return this.ready.size + this.prio.length + this.delayed.length;
  }

  /**
   * Takes a task that leaves its waiting state out of the ready, priority and delayed lists, so
   * that no list keeps entries of tasks that left it (a cancelled 10-year delay would otherwise
   * stay in memory for 10 years).
   */
  unlist(t: MemTask): void {
    if (t.status === 'queued' && t.entryId) {
      if (t.lane === 1) this.prio = this.prio.filter((p) => p.id !== t.id);
      else this.ready.delete(t.entryId);
    } else if (t.status === 'delayed') {
      this.delayed = this.delayed.filter((d) => d.id !== t.id);
    }
    t.dueAt = undefined;
  }
}
