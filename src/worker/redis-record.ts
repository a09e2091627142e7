import { TASK_STATUSES, type TaskStatus } from './task-status.js';
import type { TaskRecord } from './backend.js';

const STATUSES = new Set<TaskStatus>(TASK_STATUSES);

/** The task fields as the scripts store them (JSON in the task hash). */
interface StoredTask {
  st?: string;
  a?: number;
  ma?: number;
  to?: number | string;
  pr?: number;
  c?: number;
  u?: number;
  pg?: number;
  er?: string;
  nm?: string;
}

/** @internal Parses a stored task (JSON in the task hash); null when it is not one. */
export function parseRecord(
  id: string,
  json: string,
  result: string | undefined,
): TaskRecord | null {
  let h: StoredTask;
  try {
    h = JSON.parse(json) as StoredTask;
  } catch {
    return null;
  }
  if (typeof h !== 'object' || h === null || !STATUSES.has(h.st as TaskStatus)) return null;
  const r: TaskRecord = {
    id,
    status: h.st as TaskStatus,
    attempts: Number(h.a ?? 0),
    maxAttempts: Number(h.ma ?? 0),
    timeout: Number(h.to ?? 0),
    priority: Number(h.pr ?? 0),
    createdAt: Number(h.c ?? 0),
    updatedAt: Number(h.u ?? 0),
  };
  if (result !== undefined) r.result = result;
  if (typeof h.er === 'string') r.error = h.er;
  if (h.pg !== undefined) r.progress = Number(h.pg);
  if (typeof h.nm === 'string' && h.nm !== '') r.name = h.nm;
  return r;
}
