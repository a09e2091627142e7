import type { BackendRateLimit, CleanableStatus } from './admin.js';
import { TERMINAL } from './backend.js';
import type { MemTask, MemoryQueueState } from './memory-state.js';
import type { TaskStatus } from './task-status.js';

/**
 * Listing, cleaning, obliterating, pause and the rate limit for the memory backend, in the same
 * orders and with the same rules as the Redis scripts (redis-admin.ts, the claim script).
 */

/** How many of `asked` tasks a claim may hand out now, and when a held-back claim may retry. */
export function admit(
  s: MemoryQueueState,
  rl: BackendRateLimit | undefined,
  now: number,
  asked: number,
): { count: number; nextAt: number | null } {
  if (s.paused) return { count: 0, nextAt: null };
  if (!rl) return { count: asked, nextAt: null };
  let i = 0;
  while (i < s.rateLog.length && (s.rateLog[i] as number) <= now - rl.perMs) i++;
  if (i > 0) s.rateLog = s.rateLog.slice(i);
  const allow = Math.max(0, rl.max - s.rateLog.length);
  if (allow >= asked) return { count: asked, nextAt: null };
  const first = s.rateLog[0];
  return { count: allow, nextAt: first === undefined ? null : first + rl.perMs + 1 };
}

/** Records `n` task starts at `now` in the rate-limit window. */
export function recordStarts(
  s: MemoryQueueState,
  rl: BackendRateLimit | undefined,
  now: number,
  n: number,
): void {
  if (!rl) return;
  for (let i = 0; i < n; i++) s.rateLog.push(now);
}

function live(t: MemTask | undefined, now: number): t is MemTask {
  return !!t && !(t.expiresAt !== undefined && t.expiresAt <= now && TERMINAL.has(t.status));
}

/** Finished tasks: latest finish first, then latest submit first. */
function byFinishDesc(a: MemTask, b: MemTask): number {
  return b.updatedAt - a.updatedAt || b.seq - a.seq;
}

/** Tasks of one status, newest first (same orders as the Redis list script). */
export function listMemory(
  s: MemoryQueueState,
  status: TaskStatus,
  offset: number,
  limit: number,
  now: number,
): MemTask[] {
  let all: MemTask[] = [];
  const get = (id: string) => s.tasks.get(id);
  if (status === 'queued') {
    for (const [entry, id] of [...s.ready].reverse()) {
      const t = get(id);
      if (t?.status === 'queued' && t.entryId === entry) all.push(t);
    }
    for (const p of [...s.prio].reverse()) {
      const t = get(p.id);
      if (t?.status === 'queued') all.push(t);
    }
  } else if (status === 'delayed') {
    for (const d of [...s.delayed].reverse()) {
      const t = get(d.id);
      if (t?.status === 'delayed' && t.dueAt === d.at) all.push(t);
    }
  } else if (status === 'processing') {
    for (const [entry, h] of [...s.held].reverse()) {
      const t = get(h.id);
      if (t?.status === 'processing' && t.entryId === entry) all.push(t);
    }
  } else {
    for (const t of s.tasks.values()) if (t.status === status && live(t, now)) all.push(t);
    all.sort(byFinishDesc);
  }
  all = all.slice(offset, offset + limit);
  return all;
}

/** Removes up to `limit` tasks of a finished status that finished at or before `cutoffMs`. */
export function cleanMemory(
  s: MemoryQueueState,
  status: CleanableStatus,
  cutoffMs: number,
  limit: number,
  now: number,
): number {
  s.sweep(now);
  const victims: MemTask[] = [];
  for (const t of s.tasks.values()) {
    if (t.status === status && t.updatedAt <= cutoffMs) victims.push(t);
  }
  // Oldest first, so a limited clean removes the oldest.
  victims.sort((a, b) => a.updatedAt - b.updatedAt || a.seq - b.seq);
  let n = 0;
  for (const t of victims) {
    if (n >= limit) break;
    s.tasks.delete(t.id);
    s.dead.delete(t.id);
    n++;
  }
  return n;
}

/** Forgets every task of the queue; returns -1, or the running count when refused. */
export function obliterateMemory(s: MemoryQueueState, force: boolean): number {
  if (s.held.size > 0 && !force) return s.held.size;
  s.tasks.clear();
  s.ready.clear();
  s.prio = [];
  s.delayed = [];
  s.held.clear();
  s.dead.clear();
  s.parents.clear();
  s.expiry = [];
  s.completed = 0;
  s.failed = 0;
  s.paused = false;
  s.rateLog = [];
  s.notifyWork();
  return -1;
}
