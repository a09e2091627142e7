import type { TaskQueue } from './queue.js';
import type { TaskHandler, TaskBackoffOptions, TaskQueueOptions } from './types.js';
import type { QueueBackend } from './backend.js';
import type { MetricsSink } from '../core/metrics.js';
import type { RedisInput } from '../core/connection.js';

/** Options of {@link BackgroundWorker}. */
export interface BackgroundWorkerOptions<D = unknown, R = unknown> {
  /** The queue: its name (created with `redis`/`resultTtl` below and closed on stop) or a {@link TaskQueue} you own. @default 'default' */
  queue?: string | TaskQueue;
  /**
   * Runs each unnamed task. At least one of `handler` and `handlers` is required.
   * @default none: an unnamed task fails with `UnknownTaskNameError`
   */
  handler?: TaskHandler<D, R>;
  /**
   * Handlers by task name (`submitTask(data, { name })`); only own properties count, so names
   * such as `constructor` or `__proto__` never reach `Object.prototype`.
   * @default none: every named task fails with `UnknownTaskNameError`
   * @example handlers: { summarize: async (d) => summarize(d), embed: async (d) => embed(d) }
   */
  // biome-ignore lint/suspicious/noExplicitAny: each name's handler takes its own data type
  handlers?: Readonly<Record<string, TaskHandler<any, unknown>>>;
  /** Tasks run at once in this process (the seed's `num_workers`). @default 4 */
  numWorkers?: number;
  /** Redis for a queue given by name; see {@link TaskQueueOptions.redis}. */
  redis?: RedisInput;
  /** Result retention for a queue given by name, seconds. @default 86400 */
  resultTtl?: number;
  /** `maxQueued` for a queue given by name; see {@link TaskQueueOptions.maxQueued}. */
  maxQueued?: number;
  /** A custom backend for a queue given by name; see {@link TaskQueueOptions.store}. */
  store?: QueueBackend;
  /** Alias of `store`. */
  backend?: QueueBackend;
  /** `rateLimit` for a queue given by name; see {@link TaskQueueOptions.rateLimit}. @default no limit */
  rateLimit?: import('./admin.js').QueueRateLimit;
  /** `events` for a queue given by name; see {@link TaskQueueOptions.events}. @default { maxLen: 10000 } */
  events?: import('./admin.js').QueueEventsOptions;
  /** Attempts per task unless the task sets its own. @default 3 */
  attempts?: number;
  /** Delay between attempts. @default { type: 'exponential', delay: 1, jitter: true } */
  backoff?: TaskBackoffOptions;
  /** Seconds an attempt may run before `ctx.signal` aborts and the attempt fails. @default no limit */
  timeout?: number;
  /**
   * Seconds without a heartbeat after which another worker reclaims a task (the worker is
   * presumed dead). Heartbeats are sent every `min(1, visibilityTimeout / 3)` seconds.
   * @default 30
   */
  visibilityTimeout?: number;
  /**
   * Take part in firing the queue's schedules ({@link TaskQueue.schedule}) while running. Every
   * worker may: each tick still produces one task. `false` leaves it to the other workers.
   * @default true
   */
  scheduler?: boolean;
  /** Stop gracefully on SIGTERM and SIGINT, then re-raise the signal. @default false */
  handleSignals?: boolean;
  /** Seconds {@link BackgroundWorker.stop} waits for running tasks when called by a signal. @default 30 */
  shutdownTimeout?: number;
  /** Where to report metrics. @default the queue's, or noopMetrics */
  metrics?: MetricsSink;
}
