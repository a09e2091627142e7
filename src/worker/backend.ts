import type { TaskStatus } from './task-status.js';

/**
 * The storage contract behind {@link TaskQueue} and {@link BackgroundWorker}. A backend keeps
 * tasks, hands them to workers in batches, and records outcomes atomically; the classes users
 * call never talk to Redis themselves. Values cross this boundary already encoded as JSON text.
 *
 * Ownership: a claimed task is held by one `consumer` under a lease. A lease not renewed by
 * {@link QueueBackend.heartbeat} for `reclaimIdleMs` may be taken over by another consumer's
 * {@link QueueBackend.claim}; the attempt counter then goes up, so an old holder's `fail`,
 * `heartbeat` and `progress` are ignored. A `complete` is accepted from whoever finishes first
 * while the task is not finished; the result is never overwritten.
 */
export interface QueueBackend {
  /** `memory` or `redis` (for messages and metrics labels). */
  readonly kind: string;
  /** Adds tasks; returns, per task, whether it was created (false: the id existed). */
  submit(tasks: readonly NewTask[], now: number): Promise<boolean[]>;
  /**
   * The stored task, or null. With `options.data`, also its data while the backend keeps it
   * (until the task completes); without, backends may leave `data` out to keep reads small.
   */
  get(id: string, options?: { data?: boolean }): Promise<TaskRecord | null>;
  /** Cancels a task; see {@link CancelOutcome}. */
  cancel(id: string, now: number): Promise<CancelOutcome>;
  /**
   * Records `req.completions`, promotes due delayed tasks, reclaims expired leases (when
   * `req.reclaimIdleMs` is set) and hands up to `req.count` tasks to `req.consumer`, all in one
   * round trip where the backend can.
   */
  claim(req: ClaimRequest): Promise<ClaimResult>;
  /** Records results (first finisher wins) and acknowledges the tasks. */
  complete(items: readonly Completion[], now: number): Promise<void>;
  /** Records failed attempts: a retry (`retryAt` set) or the end (dead letter). */
  fail(items: readonly Failure[], now: number): Promise<FailOutcome[]>;
  /** Renews the leases of running tasks; says which were cancelled or lost. */
  heartbeat(consumer: string, items: readonly TaskRef[], now: number): Promise<HeartbeatOutcome[]>;
  /** Gives running tasks back to the queue at once (shutdown); the attempt is not counted. */
  release(consumer: string, items: readonly TaskRef[], now: number): Promise<void>;
  /** Stores progress of a running attempt; false when the attempt is no longer current. */
  progress(ref: TaskRef, value: number, now: number): Promise<boolean>;
  /** A waiter for new work, one per worker. */
  openWaiter(): Promise<WorkWaiter>;
  /** Counts; see {@link TaskQueueStats}. */
  stats(now: number): Promise<BackendStats>;
  /** Failed tasks in the dead-letter list, oldest first. */
  deadLetters(limit: number): Promise<TaskRecord[]>;
  /** Puts dead-lettered tasks (all, or those of `ids`) back in the queue; returns how many. */
  redrive(ids: readonly string[] | undefined, now: number): Promise<number>;
  /** Releases what the backend holds (connections it created, timers). */
  close(): Promise<void>;
}

/** Waits for a sign of new work (a submit, a redrive, a release). */
export interface WorkWaiter {
  /** Resolves when work may have arrived after `token`, or after `maxMs`, or on close. */
  wait(token: string, maxMs: number): Promise<void>;
  /** Ends a pending wait early (e.g. a local retry became due); the waiter stays usable. */
  notify(): Promise<void>;
  /** Ends a pending wait at once and frees the waiter. */
  close(): Promise<void>;
}

/** A task as stored. `data`, `result` and `error` are JSON text. */
export interface TaskRecord {
  /** The task id. */
  id: string;
  /** Where the task is; see {@link TaskStatus}. */
  status: TaskStatus;
  /** The task name, when it has one. */
  name?: string;
  /** The task data (JSON). */
  data?: string;
  /** The handler's result (JSON), once completed. */
  result?: string;
  /** JSON of `{ name, message, code? }`. */
  error?: string;
  /** Last progress value the running attempt reported; cleared when a new attempt starts. */
  progress?: number;
  /** Attempts started so far. */
  attempts: number;
  /** 0: the worker's default. */
  maxAttempts: number;
  /** Seconds; 0: the worker's default. */
  timeout: number;
  /** 0 to {@link MAX_PRIORITY}; higher starts first, 0: plain submit order. */
  priority: number;
  /** When the task was submitted (ms since epoch). */
  createdAt: number;
  /** When the task last changed (ms since epoch). */
  updatedAt: number;
}

/** A task to add. */
export interface NewTask {
  /** The task id (also its idempotency key). */
  id: string;
  /** The task data (JSON). */
  data: string;
  /** Attempts before the task fails for good; 0: the worker's default. */
  maxAttempts: number;
  /** Seconds one attempt may run; 0: the worker's default. */
  timeout: number;
  /** 0 to {@link MAX_PRIORITY}; higher starts first. */
  priority: number;
  /** Milliseconds before the task may start; 0: at once. */
  delayMs: number;
  /** W3C `traceparent` of the submitter's span, so the handler's span joins its trace. */
  trace?: string;
  /** The task name, which picks the worker's handler; undefined: unnamed. */
  name?: string;
}

/** Identifies one attempt of a task held by a worker. */
export interface TaskRef {
  /** The task id. */
  id: string;
  /** Backend routing detail (e.g. which stream); opaque to callers. */
  lane: number;
  /** Backend delivery id (e.g. the stream entry id); opaque to callers. */
  entryId: string;
  /** Which attempt this is (1 for the first); a stale attempt's calls are ignored. */
  attempt: number;
}

/** A task handed to a worker. */
export interface ClaimedTask extends TaskRef {
  /** The task data (JSON). */
  data: string;
  /** Attempts before the task fails for good; 0: the worker's default. */
  maxAttempts: number;
  /** Seconds one attempt may run; 0: the worker's default. */
  timeout: number;
  /** The submitter's `traceparent`, when it was traced. */
  trace?: string;
  /** The task name, when it has one. */
  name?: string;
}

/** A finished attempt's result (JSON). */
export interface Completion extends TaskRef {
  /** The handler's result (JSON). */
  result: string;
}

/** A failed attempt. */
export interface Failure extends TaskRef {
  /** JSON of `{ name, message, code? }`. */
  error: string;
  /** When to try again (ms since epoch), or null to fail the task for good. */
  retryAt: number | null;
}

/** What {@link QueueBackend.claim} takes. */
export interface ClaimRequest {
  /** Name of the claiming worker; it holds the leases of the tasks handed to it. */
  consumer: string;
  /** Most tasks to hand over. */
  count: number;
  /** Current time (ms since epoch). */
  now: number;
  /** Reclaim tasks whose lease is older than this many ms; 0/undefined: skip reclaiming. */
  reclaimIdleMs?: number;
  /** Attempts for tasks that did not set their own (for reclaims of dead workers' tasks). */
  defaultAttempts: number;
  /** Finished attempts to record before claiming (as {@link QueueBackend.complete}). */
  completions?: readonly Completion[];
}

/** What {@link QueueBackend.claim} returns. */
export interface ClaimResult {
  /** The tasks handed to the consumer (at most `count`; may be empty). */
  tasks: ClaimedTask[];
  /** When the next delayed task is due (ms since epoch), or null. */
  nextDueAt: number | null;
  /** Pass to {@link WorkWaiter.wait} to wait for work newer than this claim. */
  token: string;
}

/** `missing`: unknown id; `terminal`: already finished; `cancelled`: was waiting; `running`: was running (workers abort it). */
export type CancelOutcome = 'missing' | 'terminal' | 'cancelled' | 'running';

/** `ignored`: the attempt was no longer current; `retry`: scheduled again; `dead`: failed for good. */
export type FailOutcome = 'ignored' | 'retry' | 'dead';

/** `ok`: lease renewed; `cancelled`: abort it; `lost`: another worker holds it now. */
export type HeartbeatOutcome = 'ok' | 'cancelled' | 'lost';

/** Raw counts behind {@link TaskQueueStats}. */
export interface BackendStats {
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks waiting for their delay or retry backoff. */
  delayed: number;
  /** Tasks a worker holds now. */
  processing: number;
  /** Tasks completed (a running total). */
  completed: number;
  /** Tasks that failed for good (a running total). */
  failed: number;
  /** Failed tasks still in the dead-letter list. */
  deadLettered: number;
  /** Enqueue time (ms since epoch) of the oldest waiting task, or null. */
  oldestQueuedAt: number | null;
  /** Flow parents waiting for their children; backends without flows may leave it out (0). */
  waitingChildren?: number;
}

export { TERMINAL } from './task-status.js';

/**
 * True for an object that implements {@link QueueBackend} (checked by its methods, so a backend
 * from another copy of this module or a plain object passes).
 */
export function isQueueBackend(v: unknown): v is QueueBackend {
  const b = v as Partial<QueueBackend> | null;
  return (
    typeof b === 'object' &&
    b !== null &&
    typeof b.submit === 'function' &&
    typeof b.claim === 'function' &&
    typeof b.get === 'function'
  );
}

/** Highest priority accepted. */
export const MAX_PRIORITY = 1_048_576;
