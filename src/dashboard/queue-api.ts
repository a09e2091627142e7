/**
 * The queue page's reads and actions. Listing, pausing and cleaning are the queue's own methods
 * (`listTasks`, `pause`, `resume`, `isPaused`, `clean`); a queue object without one of them
 * answers that route with a 400 naming the missing capability.
 */
import { NotFoundError, ValidationError } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { assertDuration } from '../core/timers.js';
import type { TaskQueue } from '../worker/queue.js';
import type { TaskInfo } from '../worker/types.js';
import { type QueueFeatures, type TaskView, taskView } from './views.js';

/**
 * Statuses the task list can show (`failed` tasks are the dead letters). `dead` reads
 * `deadLetters()` and serves queues without `listTasks`.
 */
export const LIST_STATUSES = [
  'queued',
  'delayed',
  'processing',
  'completed',
  'failed',
  'cancelled',
  'dead',
] as const;

/** A task list status. */
export type ListStatus = (typeof LIST_STATUSES)[number];

/** Most tasks one page of the list shows. */
export const MAX_PAGE = 100;
/** Deepest offset a list page may start at. */
export const MAX_OFFSET = 100_000;

interface QueueExtras {
  listTasks?(o: { status?: string; offset?: number; limit?: number }): Promise<unknown>;
  pause?(): Promise<unknown>;
  resume?(): Promise<unknown>;
  clean?(o: { status: string; olderThan?: number; limit?: number }): Promise<number>;
}

function extras(q: TaskQueue): QueueExtras {
  return q as unknown as QueueExtras;
}

function missing(what: string): ValidationError {
  return new ValidationError(`this queue has no ${what}() (needs azscale with issue 17)`, {
    option: what,
  });
}

/** Parses `status`, `offset` and `limit` of a list request. */
export function parseListQuery(params: URLSearchParams): {
  status: ListStatus;
  offset: number;
  limit: number;
} {
  for (const k of params.keys()) {
    if (k !== 'status' && k !== 'offset' && k !== 'limit') {
      throw new ValidationError(`unknown query parameter ${JSON.stringify(k.slice(0, 40))}`, {
        option: k.slice(0, 40),
      });
    }
  }
  const status = params.get('status') ?? 'queued';
  if (!(LIST_STATUSES as readonly string[]).includes(status)) {
    throw new ValidationError(`status must be one of ${LIST_STATUSES.join(', ')}`, {
      option: 'status',
    });
  }
  const int = (name: string, dflt: number, min: number, max: number) => {
    const raw = params.get(name);
    if (raw === null) return dflt;
    const n = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ValidationError(`${name} must be an integer in ${min}..${max}`, { option: name });
    }
    return n;
  };
  return {
    status: status as ListStatus,
    offset: int('offset', 0, 0, MAX_OFFSET),
    limit: int('limit', 20, 1, MAX_PAGE),
  };
}

/** One page of tasks, newest first. */
export async function listTasks(
  q: TaskQueue,
  query: { status: ListStatus; offset: number; limit: number },
): Promise<{ tasks: TaskView[]; offset: number; limit: number; status: ListStatus }> {
  let tasks: TaskInfo[];
  if (query.status === 'dead') {
    const all = await q.deadLetters({ limit: Math.min(query.offset + query.limit, MAX_OFFSET) });
    tasks = all.slice(query.offset, query.offset + query.limit);
  } else {
    const list = extras(q).listTasks;
    if (!list) throw missing('listTasks');
    const r = await list.call(q, {
      status: query.status,
      offset: query.offset,
      limit: query.limit,
    });
    tasks = (Array.isArray(r) ? r : ((r as { tasks?: TaskInfo[] })?.tasks ?? [])) as TaskInfo[];
  }
  return { ...query, tasks: tasks.map(taskView) };
}

/** What this queue object can do beyond 0.1.0's API (the page hides what it cannot). */
export function queueFeatures(q: TaskQueue): QueueFeatures {
  const x = extras(q);
  return {
    listTasks: typeof x.listTasks === 'function',
    pause: typeof x.pause === 'function' && typeof x.resume === 'function',
    clean: typeof x.clean === 'function',
  };
}

/**
 * One task, or a 404. `getTask` gives status, result, error and progress; the stored record
 * adds the task's data (kept as JSON text: shown as parsed JSON, or as the text when it does
 * not parse), its attempt limit and priority.
 */
export async function getTask(q: TaskQueue, id: string): Promise<TaskView> {
  validateId(id, 'task id', 512);
  const [t, rec] = await Promise.all([q.getTask(id), q.backend.get(id, { data: true })]);
  if (!t) throw new NotFoundError(`no task ${JSON.stringify(id.slice(0, 80))} in this queue`);
  const view = taskView(t);
  if (rec && !('data' in view) && rec.data !== undefined) view.data = parseData(rec.data);
  if (rec) {
    view.maxAttempts = rec.maxAttempts;
    view.priority = rec.priority;
  }
  return view;
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The actions of the queue page, by route name. */
export async function runQueueAction(
  q: TaskQueue,
  action: string,
  taskId: string | undefined,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const id = taskId === undefined ? undefined : validateId(taskId, 'task id', 512);
  switch (action) {
    case 'retry':
    case 'redrive':
      return { redriven: await q.redrive(id === undefined ? undefined : [id]) };
    case 'cancel':
      if (id === undefined) break;
      return { cancelled: await q.cancelTask(id) };
    case 'pause':
    case 'resume': {
      const fn = extras(q)[action];
      if (!fn || id !== undefined) throw missing(action);
      await fn.call(q);
      return { paused: action === 'pause' };
    }
    case 'clean': {
      const clean = extras(q).clean;
      if (!clean || id !== undefined) throw missing('clean');
      return { removed: await clean.call(q, parseClean(body)) };
    }
  }
  throw new NotFoundError(`no queue action ${JSON.stringify(action.slice(0, 40))}`);
}

// `failed` tasks are the dead letters (issue 17's clean()).
const CLEANABLE = ['completed', 'failed', 'cancelled'];

function parseClean(body: Record<string, unknown>): {
  status: string;
  olderThan?: number;
  limit?: number;
} {
  for (const k of Object.keys(body)) {
    if (k !== 'status' && k !== 'olderThan' && k !== 'limit') {
      throw new ValidationError(`unknown field ${JSON.stringify(k.slice(0, 40))}`, {
        option: k.slice(0, 40),
      });
    }
  }
  const status = body.status;
  if (typeof status !== 'string' || !CLEANABLE.includes(status)) {
    throw new ValidationError(`status must be one of ${CLEANABLE.join(', ')}`, {
      option: 'status',
    });
  }
  const out: { status: string; olderThan?: number; limit?: number } = { status };
  if (body.olderThan !== undefined) {
    out.olderThan = assertDuration(body.olderThan, 'olderThan', { allowZero: true });
  }
  if (body.limit !== undefined) {
    const l = body.limit;
    if (typeof l !== 'number' || !Number.isInteger(l) || l < 1 || l > 100_000) {
      throw new ValidationError('limit must be an integer in 1..100000', { option: 'limit' });
    }
    out.limit = l;
  }
  return out;
}
