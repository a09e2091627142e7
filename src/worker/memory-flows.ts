import { ConflictError } from '../core/errors.js';
import { TERMINAL } from './backend.js';
import { type NewFlowTask, childFailedError } from './flow-backend.js';
import type { MemTask, MemoryQueueState } from './memory-state.js';
import { queueFullError } from './queue-full.js';

/**
 * Flows on the memory backend, the same rules as the Redis scripts (redis-flow-scripts.ts): a
 * parent waits in `waiting-children` until its last child finished, a child that fails for good
 * (or is cancelled) fails its parent unless the parent ignores it, and children's results are
 * kept while their parent may still read them.
 */

/** Adds a whole flow, or nothing. */
export function submitMemoryFlow(
  s: MemoryQueueState,
  nodes: readonly NewFlowTask[],
  now: number,
  name: string,
  maxQueued: number,
): void {
  s.sweep(now);
  for (const n of nodes) {
    if (s.tasks.has(n.id)) {
      throw new ConflictError(`task ${n.id} already exists in queue ${name}`, {
        context: { taskId: n.id, queue: name },
      });
    }
  }
  const waiting = s.waiting();
  if (Number.isFinite(maxQueued) && waiting + nodes.length > maxQueued) {
    throw queueFullError(name, maxQueued, waiting, nodes.length);
  }
  for (const n of nodes) {
    const t: MemTask = {
      id: n.id,
      status: 'queued',
      data: n.data,
      attempts: 0,
      maxAttempts: n.maxAttempts,
      timeout: n.timeout,
      priority: n.priority,
      ...(n.trace ? { trace: n.trace } : {}),
      createdAt: now,
      updatedAt: now,
      lane: 0,
      seq: ++s.seq,
    };
    if (n.name) t.name = n.name;
    if (n.parent !== undefined) {
      t.fp = n.parent;
      if (n.ignoreFailure) t.fi = true;
      (s.tasks.get(n.parent) as MemTask).fc?.push(n.id);
    }
    s.tasks.set(n.id, t);
    if (n.children > 0) {
      t.status = 'waiting-children';
      s.parents.add(n.id);
      t.fw = n.children;
      t.fc = [];
    } else if (n.delayMs > 0) s.delay(t, now + n.delayMs, now);
    else s.enqueue(t, now);
  }
  s.notifyWork();
}

/** Moves the flow on after `t` reached a terminal state (called by the state's `finish`). */
export function memoryFlowFinished(
  s: MemoryQueueState,
  t: MemTask,
  now: number,
  ttlMs: number,
): void {
  for (const c of t.fc ?? []) {
    const ct = s.tasks.get(c);
    // A finished parent lets its finished children expire with it.
    if (ct && TERMINAL.has(ct.status) && ct.expiresAt === undefined) {
      ct.expiresAt = now + ttlMs;
      s.expiry.push({ id: c, at: ct.expiresAt });
    }
  }
  if (t.fp === undefined) return;
  const p = s.tasks.get(t.fp);
  if (!p || TERMINAL.has(p.status)) return;
  // The parent may still read this child's result.
  t.expiresAt = undefined;
  if (p.status !== 'waiting-children') return;
  if (t.status === 'completed' || t.fi) {
    p.fw = (p.fw ?? 1) - 1;
    if (p.fw <= 0) {
      p.fw = undefined;
      s.enqueue(p, now);
      s.notifyWork();
    }
    return;
  }
  let why = 'was cancelled';
  if (t.status === 'failed') {
    let msg = 'unknown error';
    try {
      const e = JSON.parse(t.error ?? '') as { message?: unknown };
      if (typeof e.message === 'string') msg = e.message;
    } catch {
      // keep the generic message
    }
    why = `failed: ${msg}`;
  }
  p.status = 'failed';
  p.fw = undefined;
  p.error = childFailedError(t.id, why);
  s.failed++;
  s.dead.set(p.id, now);
  s.finish(p, now, ttlMs);
}

/** Results (JSON) of the completed direct children of `id`; null for an unknown task. */
export function memoryChildResults(s: MemoryQueueState, id: string): Map<string, string> | null {
  const t = s.tasks.get(id);
  if (!t) return null;
  const out = new Map<string, string>();
  for (const c of t.fc ?? []) {
    const ct = s.tasks.get(c);
    if (ct?.status === 'completed' && ct.result !== undefined) out.set(c, ct.result);
  }
  return out;
}
