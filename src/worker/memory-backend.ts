import type {
  BackendStats,
  CancelOutcome,
  ClaimRequest,
  ClaimResult,
  ClaimedTask,
  Completion,
  FailOutcome,
  Failure,
  HeartbeatOutcome,
  NewTask,
  QueueBackend,
  TaskRecord,
  TaskRef,
  WorkWaiter,
} from './backend.js';
import { TERMINAL } from './backend.js';
import type { TaskEventReader, TaskEventSource } from './event-source.js';
import type { FlowBackend, NewFlowTask } from './flow-backend.js';
import { memoryChildResults, memoryFlowFinished, submitMemoryFlow } from './memory-flows.js';
import { queueFullError } from './queue-full.js';
import type { BackendRateLimit, CleanableStatus, QueueAdminBackend } from './admin.js';
import { admit, cleanMemory, listMemory, obliterateMemory, recordStarts } from './memory-admin.js';
import { type Held, type MemTask, MemoryQueueState } from './memory-state.js';
import { type MemoryRegistry, defaultMemoryRegistry } from './memory-registry.js';
import type { TaskStatus } from './task-status.js';

/** @internal Kept importable from here (they moved to memory-state.ts). */
export type { Held, MemTask } from './memory-state.js';
export { MemoryQueueState } from './memory-state.js';

/** Options of {@link MemoryQueueBackend}. */
export interface MemoryQueueBackendOptions {
  /** Queue name; handles of the same name in one process share their tasks. */
  name: string;
  /** Seconds finished tasks are kept. */
  resultTtl: number;
  /** Most tasks waiting at once (queued or delayed). @default Infinity */
  maxQueued?: number;
  /** Queue-wide start rate. @default no limit */
  rateLimit?: BackendRateLimit;
  /** Where queues of the same name meet. @default defaultMemoryRegistry */
  registry?: MemoryRegistry;
  /**
   * Newest events kept; handles sharing a state keep the largest of theirs.
   * @default 10000
   */
  eventsMaxLen?: number;
}

/**
 * The embedded backend: a queue in this process's memory with the same semantics as the Redis
 * one (leases, reclaim, delayed tasks, priorities, dead letters, result expiry). Every handle
 * with the same name shares one state, which is dropped when the last handle closes.
 */
export class MemoryQueueBackend
  implements QueueBackend, QueueAdminBackend, TaskEventSource, FlowBackend
{
  readonly kind = 'memory';
  private readonly s: MemoryQueueState;
  private readonly ttlMs: number;
  private readonly name: string;
  private readonly maxQueued: number;
  private readonly rateLimit: BackendRateLimit | undefined;
  private closed = false;
  private readonly registry: MemoryRegistry;

  constructor(options: MemoryQueueBackendOptions) {
    this.name = options.name;
    this.maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
    this.ttlMs = options.resultTtl * 1000;
    this.rateLimit = options.rateLimit;
    this.registry = options.registry ?? defaultMemoryRegistry;
    let s = this.registry.queues.get(options.name) as MemoryQueueState | undefined;
    const max = options.eventsMaxLen;
    if (!s) {
      s = new MemoryQueueState();
      s.onFinished = memoryFlowFinished;
      if (max !== undefined) s.events.maxLen = max;
      this.registry.queues.set(options.name, s);
    } else if (max !== undefined && max > s.events.maxLen) s.events.maxLen = max;
    s.refs++;
    this.s = s;
  }

  async submit(tasks: readonly NewTask[], now: number): Promise<boolean[]> {
    const s = this.s;
    s.sweep(now);
    if (Number.isFinite(this.maxQueued)) {
      // All or nothing, like the Redis script: count the ids that would be new first.
      const fresh = new Set<string>();
      for (const n of tasks) if (!s.tasks.has(n.id)) fresh.add(n.id);
      const waiting = s.waiting();
      if (fresh.size > 0 && waiting + fresh.size > this.maxQueued) {
        throw queueFullError(this.name, this.maxQueued, waiting, fresh.size);
      }
    }
    const out: boolean[] = [];
    for (const n of tasks) {
      if (s.tasks.has(n.id)) {
        out.push(false);
        continue;
      }
      const t: MemTask = {
        id: n.id,
        status: 'queued',
        data: n.data,
        attempts: 0,
        maxAttempts: n.maxAttempts,
        timeout: n.timeout,
        priority: n.priority,
        ...(n.trace ? { trace: n.trace } : {}),
        ...(n.name !== undefined ? { name: n.name } : {}),
        createdAt: now,
        updatedAt: now,
        lane: 0,
        seq: ++s.seq,
      };
      s.tasks.set(n.id, t);
      if (n.delayMs > 0) s.delay(t, now + n.delayMs, now);
      else s.enqueue(t, now);
      out.push(true);
    }
    s.notifyWork();
    return out;
  }

  async get(id: string): Promise<TaskRecord | null> {
    const t = this.s.tasks.get(id);
    if (!t) return null;
    if (t.expiresAt !== undefined && t.expiresAt <= Date.now() && TERMINAL.has(t.status)) {
      this.s.tasks.delete(id);
      this.s.dead.delete(id);
      return null;
    }
    return toRecord(t);
  }

  async cancel(id: string, now: number): Promise<CancelOutcome> {
    const s = this.s;
    const t = s.tasks.get(id);
    if (!t) return 'missing';
    if (TERMINAL.has(t.status)) return 'terminal';
    const was = t.status;
    s.unlist(t);
    t.status = 'cancelled';
    s.finish(t, now, this.ttlMs);
    return was === 'processing' ? 'running' : 'cancelled';
  }

  async claim(req: ClaimRequest): Promise<ClaimResult> {
    const s = this.s;
    const now = req.now;
    // Recorded before anything else, without yielding: a claim sent after this one must not
    // take tasks first (the worker handles answers in the order it sent the claims).
    if (req.completions?.length) this.completeNow(req.completions, now);
    s.sweep(now);
    s.promote(now);
    const tasks: ClaimedTask[] = [];
    // Paused or rate-limited: hand out fewer tasks (none), as the Redis claim script does.
    const gate = admit(s, this.rateLimit, now, req.count);
    const count = gate.count;
    if (count > 0 && req.reclaimIdleMs && req.reclaimIdleMs > 0) {
      for (const [entryId, h] of s.held) {
        if (tasks.length >= count) break;
        if (now - h.leaseAt < req.reclaimIdleMs) continue;
        h.consumer = req.consumer;
        h.leaseAt = now;
        this.start(entryId, h, req, tasks, true);
      }
    }
    while (tasks.length < count && s.prio.length > 0) {
      const p = s.prio.shift() as { id: string };
      const t = s.tasks.get(p.id);
      if (!t?.entryId) continue;
      const h: Held = { id: p.id, lane: 1, consumer: req.consumer, leaseAt: now };
      s.held.set(t.entryId, h);
      this.start(t.entryId, h, req, tasks, false);
    }
    while (tasks.length < count && s.ready.size > 0) {
      const first = s.ready.entries().next().value as [string, string];
      s.ready.delete(first[0]);
      const h: Held = { id: first[1], lane: 0, consumer: req.consumer, leaseAt: now };
      s.held.set(first[0], h);
      this.start(first[0], h, req, tasks, false);
    }
    recordStarts(s, this.rateLimit, now, tasks.length);
    const next = s.paused ? undefined : s.delayed[0];
    let nextDueAt = next ? next.at : null;
    if (gate.nextAt !== null && (nextDueAt === null || gate.nextAt < nextDueAt)) {
      nextDueAt = gate.nextAt;
    }
    return { tasks, nextDueAt, token: String(s.seq) };
  }

  private start(
    entryId: string,
    h: Held,
    req: ClaimRequest,
    out: ClaimedTask[],
    reclaimed: boolean,
  ): void {
    const s = this.s;
    const t = s.tasks.get(h.id);
    if (!t || t.entryId !== entryId || TERMINAL.has(t.status)) {
      // A stale delivery (task finished, cancelled, expired or re-queued): drop it.
      s.ack(entryId);
      return;
    }
    t.attempts++;
    const max = t.maxAttempts || req.defaultAttempts;
    if (reclaimed && t.attempts > max) {
      s.ack(entryId);
      t.status = 'failed';
      t.error = JSON.stringify({
        name: 'WorkerLostError',
        message: `task ${t.id} was reclaimed from a dead worker ${t.attempts - 1} times`,
      });
      s.failed++;
      s.dead.set(t.id, req.now);
      s.finish(t, req.now, this.ttlMs);
      return;
    }
    t.status = 'processing';
    t.updatedAt = req.now;
    t.progress = undefined;
    out.push({
      id: t.id,
      lane: h.lane,
      entryId,
      attempt: t.attempts,
      data: t.data ?? 'null',
      maxAttempts: t.maxAttempts,
      timeout: t.timeout,
      ...(t.trace ? { trace: t.trace } : {}),
      ...(t.name !== undefined ? { name: t.name } : {}),
    });
  }

  async complete(items: readonly Completion[], now: number): Promise<void> {
    this.completeNow(items, now);
  }

  private completeNow(items: readonly Completion[], now: number): void {
    const s = this.s;
    for (const c of items) {
      s.ack(c.entryId);
      const t = s.tasks.get(c.id);
      if (!t || TERMINAL.has(t.status)) continue;
      // A late finisher of an attempt whose task was meanwhile re-queued: drop the new turn.
      s.unlist(t);
      t.status = 'completed';
      t.result = c.result;
      t.data = undefined;
      s.completed++;
      s.finish(t, now, this.ttlMs);
    }
  }

  async fail(items: readonly Failure[], now: number): Promise<FailOutcome[]> {
    const s = this.s;
    const out: FailOutcome[] = [];
    let wake = false;
    for (const f of items) {
      const t = s.tasks.get(f.id);
      const current = t?.status === 'processing' && t.attempts === f.attempt;
      // A stale attempt must not acknowledge the delivery its successor now holds.
      if (current || t?.entryId !== f.entryId) s.ack(f.entryId);
      if (!t || !current) {
        out.push('ignored');
        continue;
      }
      t.error = f.error;
      if (f.retryAt !== null) {
        s.events.push({
          kind: 'retrying',
          taskId: t.id,
          attempt: t.attempts,
          error: f.error,
          retryAt: f.retryAt,
        });
        if (f.retryAt <= now) {
          s.enqueue(t, now);
          wake = true;
        } else s.delay(t, f.retryAt, now);
        out.push('retry');
      } else {
        t.status = 'failed';
        s.failed++;
        s.dead.set(t.id, now);
        s.finish(t, now, this.ttlMs);
        out.push('dead');
      }
    }
    if (wake) s.notifyWork();
    return out;
  }

  async heartbeat(
    consumer: string,
    items: readonly TaskRef[],
    now: number,
  ): Promise<HeartbeatOutcome[]> {
    const s = this.s;
    return items.map((r) => {
      const t = s.tasks.get(r.id);
      if (t?.status === 'cancelled') return 'cancelled';
      const h = s.held.get(r.entryId);
      if (t?.status !== 'processing' || t.attempts !== r.attempt || !h) return 'lost';
      h.consumer = consumer;
      h.leaseAt = now;
      return 'ok';
    });
  }

  async release(_consumer: string, items: readonly TaskRef[], now: number): Promise<void> {
    const s = this.s;
    for (const r of items) {
      s.ack(r.entryId);
      const t = s.tasks.get(r.id);
      if (t?.status !== 'processing' || t.attempts !== r.attempt) continue;
      t.attempts--;
      s.enqueue(t, now);
    }
    s.notifyWork();
  }

  async progress(ref: TaskRef, value: number, now: number): Promise<boolean> {
    const t = this.s.tasks.get(ref.id);
    if (t?.status !== 'processing' || t.attempts !== ref.attempt) return false;
    t.progress = value;
    t.updatedAt = now;
    this.s.events.push({ kind: 'progress', taskId: t.id, attempt: t.attempts, progress: value });
    return true;
  }

  async openWaiter(): Promise<WorkWaiter> {
    const s = this.s;
    let current: (() => void) | undefined;
    return {
      wait(token: string, maxMs: number): Promise<void> {
        if (String(s.seq) !== token) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            s.workWaiters.delete(done);
            current = undefined;
            resolve();
          };
          const timer = setTimeout(done, Math.max(0, maxMs));
          s.workWaiters.add(done);
          current = done;
        });
      },
      async notify(): Promise<void> {
        current?.();
      },
      async close(): Promise<void> {
        current?.();
      },
    };
  }

  /** Calls `cb` when task `id` reaches a terminal state; returns a function that stops watching. */
  onSettled(id: string, cb: () => void): () => void {
    let set = this.s.settleWaiters.get(id);
    if (!set) {
      set = new Set();
      this.s.settleWaiters.set(id, set);
    }
    set.add(cb);
    return () => {
      const cur = this.s.settleWaiters.get(id);
      cur?.delete(cb);
      if (cur && cur.size === 0) this.s.settleWaiters.delete(id);
    };
  }

  /** Adds a flow (see {@link FlowBackend.submitFlow}). */
  async submitFlow(tasks: readonly NewFlowTask[], now: number): Promise<void> {
    submitMemoryFlow(this.s, tasks, now, this.name, this.maxQueued);
  }

  /** Results of the completed direct children of `id` (see {@link FlowBackend.childResults}). */
  async childResults(id: string): Promise<Map<string, string> | null> {
    return memoryChildResults(this.s, id);
  }

  /** A reader over this queue's events in this process. */
  openEventReader(): TaskEventReader {
    return this.s.events.reader();
  }

  async stats(now: number): Promise<BackendStats> {
    const s = this.s;
    s.sweep(now);
    let oldest: number | null = null;
    const first = s.ready.values().next();
    if (!first.done) oldest = s.tasks.get(first.value)?.updatedAt ?? null;
    for (const p of s.prio) {
      const at = s.tasks.get(p.id)?.updatedAt;
      if (at !== undefined && (oldest === null || at < oldest)) oldest = at;
    }
    return {
      queued: s.ready.size + s.prio.length,
      delayed: s.delayed.filter((d) => s.tasks.get(d.id)?.dueAt === d.at).length,
      processing: s.held.size,
      completed: s.completed,
      failed: s.failed,
      deadLettered: s.dead.size,
      oldestQueuedAt: oldest,
      waitingChildren: s.countWaitingParents(),
    };
  }

  async deadLetters(limit: number): Promise<TaskRecord[]> {
    const s = this.s;
    s.sweep(Date.now());
    const out: TaskRecord[] = [];
    for (const id of s.dead.keys()) {
      if (out.length >= limit) break;
      const t = s.tasks.get(id);
      if (t) out.push(toRecord(t));
    }
    return out;
  }

  async redrive(ids: readonly string[] | undefined, now: number): Promise<number> {
    const s = this.s;
    s.sweep(now);
    const targets = ids ?? [...s.dead.keys()];
    let n = 0;
    for (const id of targets) {
      if (!s.dead.has(id)) continue;
      s.dead.delete(id);
      const t = s.tasks.get(id);
      if (t?.status !== 'failed') continue;
      t.attempts = 0;
      t.error = undefined;
      t.expiresAt = undefined;
      s.enqueue(t, now);
      n++;
    }
    if (n > 0) s.notifyWork();
    return n;
  }

  listTasks(status: TaskStatus, offset: number, limit: number, now: number): Promise<TaskRecord[]> {
    return Promise.resolve(listMemory(this.s, status, offset, limit, now).map(toRecord));
  }

  clean(status: CleanableStatus, cutoffMs: number, limit: number, now: number): Promise<number> {
    return Promise.resolve(cleanMemory(this.s, status, cutoffMs, limit, now));
  }

  obliterate(force: boolean): Promise<number> {
    return Promise.resolve(obliterateMemory(this.s, force));
  }

  async setPaused(paused: boolean): Promise<void> {
    this.s.paused = paused;
    if (!paused) this.s.notifyWork();
  }

  async isPaused(): Promise<boolean> {
    return this.s.paused;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.s.refs--;
    if (this.s.refs <= 0 && this.registry.queues.get(this.name) === this.s) {
      this.registry.queues.delete(this.name);
      this.s.notifyWork();
    }
  }
}

function toRecord(t: MemTask): TaskRecord {
  const r: TaskRecord = {
    id: t.id,
    status: t.status,
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    timeout: t.timeout,
    priority: t.priority,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
  };
  if (t.data !== undefined) r.data = t.data;
  if (t.result !== undefined) r.result = t.result;
  if (t.error !== undefined) r.error = t.error;
  if (t.progress !== undefined) r.progress = t.progress;
  if (t.name !== undefined) r.name = t.name;
  return r;
}
