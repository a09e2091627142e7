import { ValidationError, describeValue } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { MAX_DURATION_SECONDS, assertDuration } from '../core/timers.js';
import { assertNumber, assertObject, assertOneOf } from '../core/validate.js';
import type { QueueBackend, TaskRecord } from './backend.js';
import type { TaskStatus } from './task-status.js';

/** A queue-wide start rate: at most `max` task starts in any `per` seconds. */
export interface QueueRateLimit {
  /** Most task starts in any window of `per` seconds, across every worker. An integer from 1. */
  max: number;
  /** The window, in seconds (at most one day). */
  per: number;
}

/** Options of {@link TaskQueue.listTasks}. */
export interface ListTasksOptions {
  /** Which tasks to list: one of the {@link TaskStatus} values. */
  status: TaskStatus;
  /** Tasks to skip, for paging. @default 0 */
  offset?: number;
  /** Most tasks to return, 1 to 1000. @default 100 */
  limit?: number;
}

/** The statuses {@link TaskQueue.clean} removes: finished tasks only. */
export type CleanableStatus = 'completed' | 'failed' | 'cancelled';

/** Options of {@link TaskQueue.clean}. */
export interface CleanTasksOptions {
  /** Which finished tasks to remove: `completed`, `failed` (dead letters) or `cancelled`. */
  status: CleanableStatus;
  /** Only tasks that finished at least this many seconds ago. @default 0 (every such task) */
  olderThan?: number;
  /** Most tasks to remove in this call. @default no limit */
  limit?: number;
}

/** Options of {@link TaskQueue.obliterate}. */
export interface ObliterateOptions {
  /** Remove the queue even while tasks run (their results are then dropped). @default false */
  force?: boolean;
}

/** A rate limit as backends take it. */
export interface BackendRateLimit {
  /** Most starts per window. */
  max: number;
  /** The window, ms. */
  perMs: number;
}

/**
 * Optional backend capability behind pause/resume, listing, cleaning and obliterating. The
 * memory and Redis backends have it; a custom backend without it makes those methods throw.
 */
export interface QueueAdminBackend {
  /** Tasks of one status, newest first (see docs/worker.md for what "newest" means per status). */
  listTasks(status: TaskStatus, offset: number, limit: number, now: number): Promise<TaskRecord[]>;
  /** Removes up to `limit` tasks of a finished status that finished at or before `cutoffMs`. */
  clean(status: CleanableStatus, cutoffMs: number, limit: number, now: number): Promise<number>;
  /** Removes every key of the queue; returns -1 when done, or the running count when refused. */
  obliterate(force: boolean): Promise<number>;
  /** Sets or clears the fleet-wide pause flag. */
  setPaused(paused: boolean): Promise<void>;
  /** Whether the pause flag is set. */
  isPaused(): Promise<boolean>;
}

/** True when `b` implements {@link QueueAdminBackend}. */
export function hasAdmin(b: QueueBackend): b is QueueBackend & QueueAdminBackend {
  return typeof (b as Partial<QueueAdminBackend>).listTasks === 'function';
}

const STATUSES: readonly TaskStatus[] = [
  'queued',
  'delayed',
  'processing',
  'completed',
  'failed',
  'cancelled',
  'waiting-children',
];
const CLEANABLE: readonly CleanableStatus[] = ['completed', 'failed', 'cancelled'];

/** Largest `listTasks` page. */
export const MAX_LIST_LIMIT = 1000;
/** Largest `listTasks` offset: deeper pages cost a scan of every task before them. */
export const MAX_LIST_OFFSET = 1_000_000;
/** Longest task name. */
export const MAX_TASK_NAME_LENGTH = 200;

/** Validates a task name (non-empty, bounded, no control characters). */
export function validateTaskName(v: unknown, option = 'name'): string {
  return validateId(v, option, MAX_TASK_NAME_LENGTH);
}

/** Options of a queue's events stream; see `TaskQueueOptions.events`. */
export interface QueueEventsOptions {
  /** Newest events kept, an integer from 100 to 10,000,000. @default 10000 */
  maxLen?: number;
}

/** Default `events.maxLen`. */
export const DEFAULT_EVENTS_MAX_LEN = 10_000;

/** @internal Returns `events.maxLen`. */
export function parseEventsOptions(v: unknown): number {
  if (v === undefined) return DEFAULT_EVENTS_MAX_LEN;
  assertObject(v, 'events');
  const o = v as QueueEventsOptions;
  if (o.maxLen === undefined) return DEFAULT_EVENTS_MAX_LEN;
  return assertNumber(o.maxLen, 'events.maxLen', { integer: true, min: 100, max: 10_000_000 });
}

/** @internal */
export function parseRateLimit(v: unknown, option = 'rateLimit'): BackendRateLimit | undefined {
  if (v === undefined) return undefined;
  assertObject(v, option);
  const o = v as Partial<QueueRateLimit>;
  const max = assertNumber(o.max, `${option}.max`, {
    integer: true,
    min: 1,
    max: 1_000_000,
  });
  const per = assertDuration(o.per, `${option}.per`, { max: 86_400 });
  return { max, perMs: Math.max(1, Math.round(per * 1000)) };
}

/** @internal */
export function parseListOptions(options: unknown): {
  status: TaskStatus;
  offset: number;
  limit: number;
} {
  assertObject(options, 'options');
  const o = options as Partial<ListTasksOptions>;
  if (o.status === undefined) {
    throw new ValidationError(`status is required, one of ${STATUSES.join(', ')}`, {
      option: 'status',
    });
  }
  return {
    status: assertOneOf(o.status, 'status', STATUSES),
    offset:
      o.offset === undefined
        ? 0
        : assertNumber(o.offset, 'offset', { integer: true, min: 0, max: MAX_LIST_OFFSET }),
    limit:
      o.limit === undefined
        ? 100
        : assertNumber(o.limit, 'limit', { integer: true, min: 1, max: MAX_LIST_LIMIT }),
  };
}

/** @internal */
export function parseCleanOptions(options: unknown): {
  status: CleanableStatus;
  olderThan: number;
  limit: number;
} {
  assertObject(options, 'options');
  const o = options as Partial<CleanTasksOptions>;
  if (typeof o.status !== 'string' || !(CLEANABLE as readonly string[]).includes(o.status)) {
    throw new ValidationError(
      `status must be one of ${CLEANABLE.join(', ')} (only finished tasks are cleaned), received ${describeValue(o.status)}`,
      { option: 'status' },
    );
  }
  return {
    status: o.status,
    olderThan:
      o.olderThan === undefined
        ? 0
        : assertDuration(o.olderThan, 'olderThan', { allowZero: true, max: MAX_DURATION_SECONDS }),
    limit:
      o.limit === undefined || o.limit === Number.POSITIVE_INFINITY
        ? Number.POSITIVE_INFINITY
        : assertNumber(o.limit, 'limit', { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER }),
  };
}

/** @internal */
export function parseObliterateOptions(options: unknown): boolean {
  assertObject(options, 'options');
  const f = (options as ObliterateOptions).force;
  if (f === undefined) return false;
  if (typeof f !== 'boolean') {
    throw new ValidationError(`force must be a boolean, received ${describeValue(f)}`, {
      option: 'force',
    });
  }
  return f;
}
