import type { RedisConnectionOptions, RedisInput } from '../core/connection.js';
import type { DurabilityOptions } from '../core/durability.js';
import type { MetricsSink } from '../core/metrics.js';
import type { QueueBackend } from './backend.js';

import type { TaskStatus } from './task-status.js';

export type { TaskStatus };

/** What {@link TaskQueue.getTask} returns for a known task. */
export interface TaskInfo<R = unknown> {
  /** The task id (the `taskId` given at submit, or a generated UUID). */
  id: string;
  /** Where the task is; see {@link TaskStatus}. */
  status: TaskStatus;
  /** The task's name (`submitTask(data, { name })`), which picks its handler; absent when unnamed. */
  name?: string;
  /** The handler's return value, once `status` is `completed` (`null` for a handler that returned nothing). */
  result?: R;
  /** Message of the last attempt's error, when an attempt failed. */
  error?: string;
  /** Class name of the last attempt's error (e.g. `TimeoutError`), next to `error`. */
  errorName?: string;
  /** Last value the handler reported with `ctx.progress(n)`. */
  progress?: number;
  /** Attempts started so far (a reclaimed crash counts as an attempt). */
  attempts: number;
  /** When the task was submitted, in milliseconds since the epoch. */
  createdAt: number;
  /** When the task last changed, in milliseconds since the epoch. */
  updatedAt: number;
}

/** Options of {@link TaskQueue.submitTask} and {@link TaskQueue.submitTasks}. */
export interface SubmitTaskOptions {
  /**
   * Idempotency key and id of the task. Submitting an id that exists returns the existing task's
   * id and enqueues nothing (while the task is retained, see `resultTtl`). For
   * {@link TaskQueue.submitTasks} pass `taskIds` instead.
   * @default a random UUID
   */
  taskId?: string;
  /** Seconds to wait before the task may start. @default 0 */
  delay?: number;
  /**
   * An integer from 0 to 1048576; a task with a higher priority starts before every task with a
   * lower one, tasks of equal priority start in submit order.
   * @default 0
   */
  priority?: number;
  /**
   * Attempts before the task fails for good and goes to the dead-letter list. Overrides the
   * worker's `attempts`.
   * @default the worker's `attempts` (3)
   */
  attempts?: number;
  /** Seconds one attempt may run before its `ctx.signal` aborts and it fails. Overrides the worker's `timeout`. */
  timeout?: number;
  /**
   * The task's name: a worker runs it with `handlers[name]`. A non-empty string of at most 200
   * characters without control characters. A named task whose name has no handler fails at once
   * with `UnknownTaskNameError` and is dead-lettered.
   * @default unnamed (the worker's `handler` runs it)
   */
  name?: string;
}

/** Options of {@link TaskQueue.submitTasks}: {@link SubmitTaskOptions} for every task, plus per-task ids. */
export interface SubmitTasksOptions extends Omit<SubmitTaskOptions, 'taskId'> {
  /** Ids (idempotency keys), one per task in order; `undefined` entries get a random UUID. */
  taskIds?: ReadonlyArray<string | undefined>;
}

/** Options of {@link TaskQueue.waitForResult}. */
export interface WaitForResultOptions {
  /** Seconds to wait before a `TimeoutError`. @default 30 */
  timeout?: number;
  /** Aborts the wait (not the task) with a `CancelledError`. */
  signal?: AbortSignal;
}

/** What {@link TaskQueue.stats} returns. Counts are of tasks, ages in seconds. */
export interface TaskQueueStats {
  /** Tasks waiting for a worker. */
  queued: number;
  /** Tasks waiting for their delay or retry backoff. */
  delayed: number;
  /** Tasks a worker holds now. */
  processing: number;
  /** Tasks completed since the queue was created (a running total). */
  completed: number;
  /** Tasks that failed for good since the queue was created (a running total). */
  failed: number;
  /** Failed tasks still in the dead-letter list (they leave it by redrive or after `resultTtl`). */
  deadLettered: number;
  /** Age in seconds of the oldest task waiting for a worker; 0 when none waits. */
  oldestAge: number;
  /** Flow parents waiting for their children (status `waiting-children`). */
  waitingChildren: number;
}

/** Options of {@link TaskQueue}. */
export interface TaskQueueOptions {
  /**
   * Queue name: workers of the same name share its tasks. Letters, digits and most punctuation;
   * at most 200 characters.
   * @default 'default'
   */
  name?: string;
  /**
   * Redis to keep the queue on: a `redis://` URL, an ioredis `Redis` or `Cluster`, or
   * `{ nodes: [...] }`. Without it the queue lives in this process's memory (queues of the same
   * name in one process share their tasks).
   */
  redis?: RedisInput;
  /** Connection settings for a connection we create (seconds). */
  redisOptions?: RedisConnectionOptions;
  /**
   * Acknowledge a submit, and a completion or failure, only once `replicas` Redis replicas have
   * it (`WAIT`; `timeout` in seconds); otherwise fail with `DurabilityError` (the write may or
   * may not survive a failover). Needs `redis`. See docs/operations.md.
   * @default undefined (off: acknowledged once the primary has it)
   */
  durability?: DurabilityOptions;
  /** A custom backend; overrides `redis`. */
  backend?: QueueBackend;
  /**
   * A custom backend (the same as `backend`, the name every other module uses; give one of the
   * two). A custom backend gets no `rateLimit`, `durability` or schedules from us.
   */
  store?: QueueBackend;
  /**
   * Seconds a finished (completed, failed or cancelled) task and its result are kept.
   * @default 86400 (one day)
   */
  resultTtl?: number;
  /**
   * Key prefix for Redis keys; every key of one queue also carries the hash tag `{name}`.
   * @default 'azs:worker:'
   */
  prefix?: string;
  /**
   * Most tasks that may wait at once (queued, delayed or waiting for a retry; running tasks do
   * not count). A submit that would go past it throws `LimitExceededError` and writes nothing
   * (on Redis the check and the write are one script, so concurrent submitters cannot overshoot).
   * `Infinity` turns the bound off. A custom `backend` enforces it only if it implements it.
   * @default 100000 in memory; Infinity on Redis (Redis memory is the operator's to size)
   */
  maxQueued?: number;
  /** Largest task data accepted, in bytes of JSON. @default 1048576 (1 MiB) */
  maxDataBytes?: number;
  /** Largest handler result accepted, in bytes of JSON. @default 1048576 (1 MiB) */
  maxResultBytes?: number;
  /** Where to report metrics. @default noopMetrics */
  metrics?: MetricsSink;
  /**
   * Seconds between the queue-depth gauges' refreshes (`worker_queue_depth` and friends, what
   * an autoscaler scales on) while `metrics` is given. Each refresh is one `stats()` call;
   * `stats()` called by the app refreshes them too. `0` turns the timer off. At most 86400.
   * @default 15
   */
  metricsInterval?: number;
  /**
   * Most tasks started per `per` seconds across every worker of the queue (a sliding window,
   * enforced in the claim itself, so it holds however many workers and processes run). A worker
   * that is held back waits until the window lets the next task start. Every worker's queue must
   * carry the same option (it is not stored in Redis). A custom `backend` does not get it.
   * @default no limit
   * @example rateLimit: { max: 5, per: 1 } // at most 5 task starts in any second
   */
  rateLimit?: import('./admin.js').QueueRateLimit;
  /**
   * The queue's events stream (what {@link TaskQueue.events} reads): `maxLen` is how many of the
   * newest events it keeps (trimmed approximately on Redis, `MAXLEN ~`, so a little more may
   * stay); a listener resuming from a position older than that misses what was trimmed. Every
   * process of the queue should give the same value: each trims to its own on the events it
   * writes.
   * @default { maxLen: 10000 }
   */
  events?: import('./admin.js').QueueEventsOptions;
  /**
   * Where a queue without `redis` keeps its tasks and schedules: handles of the same name in
   * one registry share them. Ignored with `redis` or `backend`.
   * @default defaultMemoryRegistry
   */
  memoryRegistry?: import('./memory-registry.js').MemoryRegistry;
}

/** Retry delays between attempts. */
export interface TaskBackoffOptions {
  /** `exponential`: `delay * 2^(attempt-1)`; `fixed`: `delay` every time. @default 'exponential' */
  type?: 'exponential' | 'fixed';
  /** Base delay in seconds. @default 1 */
  delay?: number;
  /** Pick each delay at random between half and all of it, so retries of many tasks spread out. @default true */
  jitter?: boolean;
  /** Largest delay in seconds. @default 3600 */
  maxDelay?: number;
}

/** What a handler receives next to the task's data. */
export interface TaskContext {
  /** The task id. */
  taskId: string;
  /** This attempt's number, from 1. */
  attempt: number;
  /** Aborts on the task's timeout, on `cancelTask`, on a forced shutdown or when another worker took the task over. */
  signal: AbortSignal;
  /**
   * Reports progress (a finite number, e.g. percent); visible in `getTask().progress` and sent
   * as a `progress` event to every listener of {@link TaskQueue.events}.
   */
  progress(n: number): Promise<void>;
  /**
   * For a flow's parent (see {@link TaskQueue.submitFlow}): an object mapping each direct
   * child's task id to its result. A child whose failure the parent ignores is left out; `{}`
   * for a task without children.
   */
  childResults<T = unknown>(): Promise<Record<string, T>>;
}

/** A task handler: takes the task's data, returns its (JSON-encodable) result. */
export type TaskHandler<D = unknown, R = unknown> = (data: D, ctx: TaskContext) => Promise<R> | R;

/** Payload of the `completed` event. */
export interface TaskCompletedEvent {
  /** The task id. */
  taskId: string;
  /** Which attempt succeeded (1 for the first). */
  attempt: number;
  /** The handler's return value. */
  result: unknown;
  /** Seconds the attempt took. */
  duration: number;
}

/** Payload of the `failed`, `retrying` and `deadLettered` events. */
export interface TaskFailedEvent {
  /** The task id. */
  taskId: string;
  /** Which attempt failed (1 for the first). */
  attempt: number;
  /** The attempt's error. */
  error: Error;
  /** For `retrying`: seconds until the next attempt. */
  retryDelay?: number;
}

/** Events of {@link BackgroundWorker}. */
export type WorkerEventMap = {
  /** A task's handler returned and its result was recorded. */
  completed: (e: TaskCompletedEvent) => void;
  /** A task failed for good (no attempts left, or an `UnrecoverableError`). */
  failed: (e: TaskFailedEvent) => void;
  /** An attempt failed and the task will run again after `retryDelay` seconds. */
  retrying: (e: TaskFailedEvent) => void;
  /** A failed task was put in the dead-letter list. */
  deadLettered: (e: TaskFailedEvent) => void;
  /** The worker's own loop hit an error (e.g. Redis unavailable); it keeps trying. */
  error: (e: Error) => void;
};

/** Options of {@link BackgroundWorker.stop}. */
export interface WorkerStopOptions {
  /** Seconds to let running tasks finish; the rest are aborted and released to other workers at once. @default 30 */
  timeout?: number;
}
