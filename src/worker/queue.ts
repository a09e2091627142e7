import { randomUUID } from 'node:crypto';
import { JsonCodec } from '../core/codec.js';
import { type RedisConnection, resolveRedis } from '../core/connection.js';
import { durabilityNeedsRedis, resolveDurability } from '../core/durability.js';
import {
  CancelledError,
  ChildTaskFailedError,
  ClosedError,
  ConflictError,
  NotFoundError,
  TaskFailedError,
  TimeoutError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { validateId, validatePrefix } from '../core/keys.js';
import { currentTraceContext, isTracingEnabled, withSpan } from '../core/trace.js';
import { messagingSpanAttributes } from '../observability/semconv.js';
import { type CounterHandle, type GaugeHandle, noopMetrics } from '../core/metrics.js';
import { assertDuration } from '../core/timers.js';
import { assertNumber, assertObject } from '../core/validate.js';
import {
  MAX_PRIORITY,
  type NewTask,
  isQueueBackend,
  type QueueBackend,
  TERMINAL,
  type TaskRecord,
} from './backend.js';
import { hasEventSource } from './event-source.js';
import { TaskQueueEvents } from './events.js';
import { hasFlows } from './flow-backend.js';
import { type FlowNode, type FlowTree, flattenFlow } from './flows.js';
import { MemoryQueueBackend } from './memory-backend.js';
import { defaultMemoryRegistry, isMemoryRegistry } from './memory-registry.js';
import { type SettleWatch, watchSettle } from './settle-watch.js';
import { RedisQueueBackend } from './redis-backend.js';
import { RedisScheduleStore } from './redis-schedule-store.js';
import {
  type ScheduleDef,
  type ScheduleInfo,
  type ScheduleOptions,
  buildScheduleDef,
  nextTick,
  timingKey,
  toScheduleInfo,
  validateScheduleId,
} from './schedule.js';
import { MemoryScheduleStore, type ScheduleStore } from './schedule-store.js';
import { wakeScheduler } from './scheduler.js';
import {
  type CleanTasksOptions,
  type ListTasksOptions,
  type ObliterateOptions,
  type QueueAdminBackend,
  hasAdmin,
  parseCleanOptions,
  parseEventsOptions,
  parseListOptions,
  parseObliterateOptions,
  parseRateLimit,
  validateTaskName,
} from './admin.js';
import type {
  SubmitTaskOptions,
  SubmitTasksOptions,
  TaskInfo,
  TaskQueueOptions,
  TaskQueueStats,
  WaitForResultOptions,
} from './types.js';

/** Default `resultTtl`: one day, in seconds. */
export const DEFAULT_RESULT_TTL = 86_400;
/** Longest queue name accepted. */
const MAX_NAME_LENGTH = 200;
/** Most attempts a task may ask for. */
const MAX_ATTEMPTS = 1000;
/** Most tasks in one `submitTasks` call. */
const MAX_BULK = 100_000;
/** Default `maxQueued` of the in-memory backend (Redis has no default bound). */
export const DEFAULT_MEMORY_MAX_QUEUED = 100_000;
/** Largest `metricsInterval`, seconds (one day). */
const MAX_METRICS_INTERVAL = 86_400;

/** @internal A worker in this process that can abort a running task at once on cancel. */
export interface LocalCanceller {
  abortLocal(taskId: string): void;
}

/** Optional backend capability: tell a waiter when a task finishes (the memory backend has it). */
interface SettleNotifier {
  onSettled(id: string, cb: () => void): () => void;
}

function hasSettle(b: QueueBackend): b is QueueBackend & SettleNotifier {
  return typeof (b as Partial<SettleNotifier>).onSettled === 'function';
}

const TASK_QUEUE_BRAND: unique symbol = Symbol.for('azscale.worker.TaskQueue') as never;

/**
 * True for a {@link TaskQueue}, also one from another copy of this module (the ESM and the CJS
 * build of the package each have their own class, so `instanceof` would say no).
 */
export function isTaskQueue(v: unknown): v is TaskQueue {
  return (
    typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[TASK_QUEUE_BRAND] === true
  );
}

/**
 * A named queue of tasks: submit work, look a task up by id, wait for its result, cancel it,
 * inspect and redrive dead letters. Embedded (in memory) without `redis`; on Redis Streams with
 * it. {@link BackgroundWorker}s of the same name run the tasks.
 *
 * @example
 * const queue = new TaskQueue({ name: 'agent-tasks', redis: process.env.REDIS_URL });
 * const id = await queue.submitTask({ query: 'hello' });
 * const task = await queue.getTask(id);   // { status: 'queued', attempts: 0, ... }
 * const result = await queue.waitForResult(id, { timeout: 60 });
 */
export class TaskQueue {
  /** @internal Marks task queues across copies of this module (see {@link isTaskQueue}). */
  readonly [TASK_QUEUE_BRAND] = true;
  /** The queue name. */
  readonly name: string;
  /** Seconds finished tasks are kept. */
  readonly resultTtl: number;
  /** Most tasks that may wait (queued or delayed) at once; `Infinity` when unbounded. */
  readonly maxQueued: number;
  /** The storage backend (memory or Redis). */
  readonly backend: QueueBackend;
  /** @internal The codec for task results (used by workers). */
  readonly resultCodec: JsonCodec;
  /** @internal Workers in this process on this queue object. */
  readonly localWorkers = new Set<LocalCanceller>();
  /** @internal Options the queue was built with (so a worker can rebuild one it owns). */
  readonly options: TaskQueueOptions;
  /** @internal Where schedules live (undefined for a custom `backend`: no schedules). */
  readonly scheduleStore: ScheduleStore | undefined;

  private readonly dataCodec: JsonCodec;
  private readonly conn: RedisConnection | undefined;
  private readonly submitted: CounterHandle;
  private readonly depth: {
    queued: GaugeHandle;
    delayed: GaugeHandle;
    processing: GaugeHandle;
    deadLettered: GaugeHandle;
    oldestAge: GaugeHandle;
    errors: CounterHandle;
  };
  private depthTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The submit span's attributes (built once: the span is the same for every submit). */
  private readonly submitSpanAttributes: Record<string, string | number>;
  private eventsHub: TaskQueueEvents | undefined;

  constructor(options: TaskQueueOptions = {}) {
    assertObject(options, 'options');
    this.options = options;
    this.name = validateId(options.name ?? 'default', 'name', MAX_NAME_LENGTH);
    this.resultTtl =
      options.resultTtl === undefined
        ? DEFAULT_RESULT_TTL
        : assertDuration(options.resultTtl, 'resultTtl');
    const prefix = validatePrefix(options.prefix ?? 'azs:worker:', 'prefix');
    this.dataCodec = new JsonCodec({ maxValueBytes: options.maxDataBytes });
    this.resultCodec = new JsonCodec({ maxValueBytes: options.maxResultBytes });
    const metrics = options.metrics ?? noopMetrics;
    const labels = { queue: this.name };
    this.submitted = metrics.counter('worker_tasks_submitted_total', labels);
    this.depth = {
      queued: metrics.gauge('worker_queue_depth', labels),
      delayed: metrics.gauge('worker_tasks_delayed', labels),
      processing: metrics.gauge('worker_tasks_processing', labels),
      deadLettered: metrics.gauge('worker_dead_letters', labels),
      oldestAge: metrics.gauge('worker_oldest_task_age_seconds', labels),
      errors: metrics.counter('worker_queue_stats_errors_total', labels),
    };
    const metricsInterval =
      options.metricsInterval === undefined
        ? 15
        : assertDuration(options.metricsInterval, 'metricsInterval', {
            allowZero: true,
            max: MAX_METRICS_INTERVAL,
          });
    const maxQueued = parseMaxQueued(options.maxQueued);
    // Checked for a custom backend too, which gets no rate limit from us (say so, not ignore).
    const rateLimit = parseRateLimit(options.rateLimit);
    const eventsMaxLen = parseEventsOptions(options.events);
    const registry = options.memoryRegistry ?? defaultMemoryRegistry;
    if (!isMemoryRegistry(registry)) {
      throw new ValidationError(
        `memoryRegistry must be a MemoryRegistry, received ${describeValue(registry)}`,
        { option: 'memoryRegistry' },
      );
    }
    if (
      options.store !== undefined &&
      options.backend !== undefined &&
      options.store !== options.backend
    ) {
      throw new ValidationError('store and backend name the same option: give one', {
        option: 'store',
      });
    }
    const custom = options.store ?? options.backend;
    if (custom !== undefined) {
      const option = options.store !== undefined ? 'store' : 'backend';
      if (!isQueueBackend(custom)) {
        throw new ValidationError(
          `${option} must implement QueueBackend, received ${describeValue(custom)}`,
          { option },
        );
      }
      // A custom backend acknowledges on its own terms: it cannot be made to WAIT.
      if (resolveDurability(options.durability)) throw durabilityNeedsRedis();
      this.backend = custom;
      this.conn = undefined;
      this.scheduleStore = undefined;
      this.maxQueued = maxQueued ?? Number.POSITIVE_INFINITY;
    } else {
      this.conn = resolveRedis(options.redis, options.redisOptions);
      const durability = resolveDurability(options.durability);
      if (durability && !this.conn) throw durabilityNeedsRedis();
      this.maxQueued =
        maxQueued ?? (this.conn ? Number.POSITIVE_INFINITY : DEFAULT_MEMORY_MAX_QUEUED);
      const common = {
        name: this.name,
        resultTtl: this.resultTtl,
        maxQueued: this.maxQueued,
        eventsMaxLen,
        ...(rateLimit ? { rateLimit } : {}),
      };
      this.backend = this.conn
        ? new RedisQueueBackend(this.conn, { ...common, prefix, durability })
        : new MemoryQueueBackend({ ...common, registry });
      this.scheduleStore = this.conn
        ? new RedisScheduleStore(this.conn, prefix, this.name)
        : new MemoryScheduleStore(this.name, registry);
    }
    this.submitSpanAttributes = {
      'azscale.queue': this.name,
      ...messagingSpanAttributes({
        system: this.backend.kind,
        destination: this.name,
        operation: 'send',
      }),
    };
    if (options.metrics !== undefined && metricsInterval > 0) {
      // Gauges an autoscaler reads must move without anyone calling stats(); unref'd, so the
      // timer never keeps a process alive.
      this.depthTimer = setInterval(() => {
        this.stats().catch(() => this.depth.errors.inc());
      }, metricsInterval * 1000);
      this.depthTimer.unref();
    }
  }

  /** True once {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The queue's task events, from every process that works on it: `completed`, `failed`,
   * `retrying`, `progress`, `deadLettered`, `cancelled`. `on()` returns a disposer; each event
   * has a `position` to resume from (`on(event, fn, { from })`). See {@link TaskQueueEvents}.
   * @throws ValidationError when a custom backend keeps no events, ClosedError after {@link close}.
   */
  get events(): TaskQueueEvents {
    this.assertOpen();
    if (!this.eventsHub) {
      const backend = this.backend;
      if (!hasEventSource(backend)) {
        throw new ValidationError(
          'the queue backend keeps no task events (it does not implement TaskEventSource)',
          { option: 'backend' },
        );
      }
      this.eventsHub = new TaskQueueEvents({
        name: this.name,
        backend,
        resultCodec: this.resultCodec,
      });
    }
    return this.eventsHub;
  }

  /**
   * Adds a flow: a parent task that runs only after all its children completed, each child
   * possibly a flow of its own. The whole flow is stored at once (no parent can run early);
   * the parent's handler reads its children's results with `ctx.childResults()`. Resolves to
   * the tree of task ids.
   * @example
   * const { id, children } = await queue.submitFlow({
   *   name: 'summarise', data: { doc },
   *   children: chunks.map((c) => ({ name: 'embed', data: c })),
   * });
   * @throws ValidationError for a bad node (the message names its path, e.g.
   * `flow.children[2].attempts`), ConflictError for a `taskId` that exists, LimitExceededError
   * past `maxQueued`; nothing is written then.
   */
  async submitFlow<D = unknown>(flow: FlowNode<D>): Promise<FlowTree> {
    this.assertOpen();
    const backend = this.backend;
    if (!hasFlows(backend)) {
      throw new ValidationError('the queue backend does not run flows (no submitFlow)', {
        option: 'backend',
      });
    }
    const { tasks, tree } = flattenFlow(flow, (id, data, o, what) =>
      this.buildTask(id, data, o, what),
    );
    await backend.submitFlow(tasks, Date.now());
    this.submitted.inc(tasks.length);
    return tree;
  }

  /**
   * The results of task `id`'s completed direct children (a flow's parent), by child id. What
   * `ctx.childResults()` returns in the parent's handler.
   * @throws NotFoundError for an unknown id.
   */
  async childResults<T = unknown>(id: string): Promise<Record<string, T>> {
    this.assertOpen();
    validateId(id, 'id');
    const backend = this.backend;
    const map = hasFlows(backend) ? await backend.childResults(id) : new Map<string, string>();
    if (!map) {
      throw new NotFoundError(`task ${id} is not known to queue ${this.name}`, {
        context: { taskId: id, queue: this.name },
      });
    }
    const out: Record<string, T> = Object.create(null);
    for (const [k, v] of map) out[k] = this.resultCodec.decode(v, 'task result') as T;
    return out;
  }

  /**
   * Adds a task and returns its id. With `taskId` of a task that exists, returns that id and
   * enqueues nothing.
   * @throws ValidationError for bad options, SerializationError for data JSON cannot hold,
   * ValueTooLargeError for data over `maxDataBytes`.
   */
  submitTask(data: unknown, options: SubmitTaskOptions = {}): Promise<string> {
    return withSpan(
      'azscale.worker.submit',
      this.submitSpanAttributes,
      async (span) => {
        this.assertOpen();
        assertObject(options, 'options');
        const id =
          options.taskId === undefined ? randomUUID() : validateId(options.taskId, 'taskId');
        const task = this.buildTask(id, data, options, 'data');
        const [created] = await this.backend.submit([task], Date.now());
        if (created) this.submitted.inc();
        span.setAttributes({ 'azscale.task_id': id, 'messaging.message.id': id });
        return id;
      },
      { kind: 'producer' },
    );
  }

  /**
   * Adds many tasks in one pipelined call (a few server round trips for thousands of tasks);
   * returns their ids in order. Validation happens before anything is written.
   */
  async submitTasks(
    items: readonly unknown[],
    options: SubmitTasksOptions = {},
  ): Promise<string[]> {
    this.assertOpen();
    if (!Array.isArray(items)) {
      throw new ValidationError(`tasks must be an array, received ${describeValue(items)}`, {
        option: 'tasks',
      });
    }
    if (items.length > MAX_BULK) {
      throw new ValidationError(
        `tasks holds ${items.length} items, over the limit of ${MAX_BULK}`,
        {
          option: 'tasks',
        },
      );
    }
    assertObject(options, 'options');
    const ids = options.taskIds;
    if (ids !== undefined && (!Array.isArray(ids) || ids.length !== items.length)) {
      throw new ValidationError(
        `taskIds must be an array as long as tasks (${items.length}), received ${describeValue(ids)}`,
        { option: 'taskIds' },
      );
    }
    const tasks: NewTask[] = items.map((data, i) => {
      const given = ids?.[i];
      const id = given === undefined ? randomUUID() : validateId(given, `taskIds[${i}]`);
      return this.buildTask(id, data, options, `tasks[${i}]`);
    });
    if (tasks.length === 0) return [];
    const created = await this.backend.submit(tasks, Date.now());
    this.submitted.inc(created.filter(Boolean).length);
    return tasks.map((t) => t.id);
  }

  /** @internal Validates options and encodes data into a task to store. */
  buildTask(id: string, data: unknown, o: SubmitTaskOptions, what: string): NewTask {
    const delay = o.delay === undefined ? 0 : assertDuration(o.delay, 'delay', { allowZero: true });
    const priority =
      o.priority === undefined
        ? 0
        : assertNumber(o.priority, 'priority', { integer: true, min: 0, max: MAX_PRIORITY });
    const attempts =
      o.attempts === undefined
        ? 0
        : assertNumber(o.attempts, 'attempts', { integer: true, min: 1, max: MAX_ATTEMPTS });
    const timeout = o.timeout === undefined ? 0 : assertDuration(o.timeout, 'timeout');
    const name = o.name === undefined ? undefined : validateTaskName(o.name);
    return {
      id,
      ...(name !== undefined ? { name } : {}),
      data: this.dataCodec.encode(data, what),
      maxAttempts: attempts,
      timeout,
      priority,
      delayMs: Math.round(delay * 1000),
      ...(isTracingEnabled() ? traceField() : {}),
    };
  }

  /** The task's status, result and error, or null for an id the queue does not know (or no longer keeps). */
  async getTask<R = unknown>(id: string): Promise<TaskInfo<R> | null> {
    this.assertOpen();
    validateId(id, 'id');
    const rec = await this.backend.get(id);
    return rec ? this.toInfo<R>(rec) : null;
  }

  /**
   * Waits for the task to finish and returns the handler's result. Never hangs: after `timeout`
   * seconds it throws a `TimeoutError` (the task keeps running).
   * @throws NotFoundError for an unknown id, TaskFailedError when the task failed (its `cause`
   * holds the handler's error), CancelledError when it was cancelled, TimeoutError.
   */
  async waitForResult<R = unknown>(id: string, options: WaitForResultOptions = {}): Promise<R> {
    this.assertOpen();
    validateId(id, 'id');
    assertObject(options, 'options');
    const timeout = options.timeout === undefined ? 30 : assertDuration(options.timeout, 'timeout');
    const signal = options.signal;
    const deadline = performance.now() + timeout * 1000;
    const delay = 5;
    // A task that already finished needs no watch (and no reader connection).
    const rec = await this.backend.get(id);
    if (rec && TERMINAL.has(rec.status)) return this.settle<R>(rec);
    // Woken by the task's terminal event (or the memory backend's own signal); polled slowly in
    // case an event is lost, quickly (as before) on a backend without either.
    const watch: SettleWatch = watchSettle(
      id,
      this.backend,
      hasEventSource(this.backend) && !hasSettle(this.backend) ? this.events : undefined,
    );
    try {
      await watch.ready(Math.min(1000, timeout * 1000));
      return await this.waitLoop<R>(id, timeout, deadline, delay, signal, watch);
    } finally {
      watch.stop();
    }
  }

  private async waitLoop<R>(
    id: string,
    timeout: number,
    deadline: number,
    delay: number,
    signal: AbortSignal | undefined,
    watch: SettleWatch,
  ): Promise<R> {
    for (;;) {
      if (signal?.aborted) {
        throw new CancelledError(`waiting for task ${id} was aborted`, {
          cause: signal.reason,
          context: { taskId: id },
        });
      }
      const rec = await this.backend.get(id);
      if (!rec) {
        throw new NotFoundError(`task ${id} is not known to queue ${this.name}`, {
          context: { taskId: id, queue: this.name },
        });
      }
      if (TERMINAL.has(rec.status)) return this.settle<R>(rec);
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new TimeoutError(`task ${id} did not finish within ${timeout} s`, {
          context: { taskId: id, status: rec.status, timeout },
        });
      }
      await watch.wait(Math.min(watch.pollMs ?? delay, left), signal);
      delay = Math.min(delay * 1.5, 250);
    }
  }

  private settle<R>(rec: TaskRecord): R {
    if (rec.status === 'completed') {
      return (
        rec.result === undefined ? null : this.resultCodec.decode(rec.result, 'task result')
      ) as R;
    }
    if (rec.status === 'cancelled') {
      throw new CancelledError(`task ${rec.id} was cancelled`, { context: { taskId: rec.id } });
    }
    const err = parseError(rec.error);
    const cause = new Error(err.message);
    cause.name = err.name;
    if (err.code === 'AZS_CHILD_TASK_FAILED') {
      throw new ChildTaskFailedError(`task ${rec.id} failed: ${err.message}`, {
        cause,
        context: { taskId: rec.id, errorName: err.name, attempts: rec.attempts, child: err.child },
      });
    }
    throw new TaskFailedError(`task ${rec.id} failed: ${err.message}`, {
      cause,
      context: { taskId: rec.id, errorName: err.name, attempts: rec.attempts },
    });
  }

  /**
   * Cancels a task: a waiting one never starts, a running one has its `ctx.signal` aborted (at
   * once in this process, within a heartbeat, at most 1 s, elsewhere) and its result is not
   * recorded. Returns false when the task had already finished.
   * @throws NotFoundError for an unknown id.
   */
  async cancelTask(id: string): Promise<boolean> {
    this.assertOpen();
    validateId(id, 'id');
    const outcome = await this.backend.cancel(id, Date.now());
    if (outcome === 'missing') {
      throw new NotFoundError(`task ${id} is not known to queue ${this.name}`, {
        context: { taskId: id, queue: this.name },
      });
    }
    if (outcome === 'running') for (const w of this.localWorkers) w.abortLocal(id);
    return outcome !== 'terminal';
  }

  /** Counts of the queue's tasks; see {@link TaskQueueStats}. */
  async stats(): Promise<TaskQueueStats> {
    this.assertOpen();
    const now = Date.now();
    const s = await this.backend.stats(now);
    const out: TaskQueueStats = {
      queued: s.queued,
      delayed: s.delayed,
      processing: s.processing,
      completed: s.completed,
      failed: s.failed,
      deadLettered: s.deadLettered,
      oldestAge: s.oldestQueuedAt === null ? 0 : Math.max(0, (now - s.oldestQueuedAt) / 1000),
      waitingChildren: s.waitingChildren ?? 0,
    };
    const d = this.depth;
    d.queued.set(out.queued);
    d.delayed.set(out.delayed);
    d.processing.set(out.processing);
    d.deadLettered.set(out.deadLettered);
    d.oldestAge.set(out.oldestAge);
    return out;
  }

  /** Failed tasks in the dead-letter list, oldest first, each with its last `error`. */
  async deadLetters(options: { limit?: number } = {}): Promise<TaskInfo[]> {
    this.assertOpen();
    assertObject(options, 'options');
    const limit =
      options.limit === undefined
        ? 1000
        : assertNumber(options.limit, 'limit', { integer: true, min: 1, max: 100_000 });
    const recs = await this.backend.deadLetters(limit);
    return recs.map((r) => this.toInfo(r));
  }

  /**
   * Puts dead-lettered tasks back in the queue with a fresh attempt count: all of them, or those
   * of `ids` (ids not in the dead-letter list are skipped). Returns how many were re-queued.
   */
  async redrive(ids?: readonly string[]): Promise<number> {
    this.assertOpen();
    if (ids !== undefined) {
      if (!Array.isArray(ids)) {
        throw new ValidationError(
          `ids must be an array of task ids, received ${describeValue(ids)}`,
          {
            option: 'ids',
          },
        );
      }
      for (const [i, id] of ids.entries()) validateId(id, `ids[${i}]`);
    }
    return this.backend.redrive(ids, Date.now());
  }

  /**
   * Adds or replaces the schedule `id`: every tick (`every` seconds, or each time `cron`
   * matches in `tz`) submits one task with `data` (and `name`, `priority`, `attempts`,
   * `timeout`). The running {@link BackgroundWorker}s of the queue, in every process, fire the
   * ticks; each tick produces exactly one task fleet-wide, with id `schedule:<id>:<tick ms>`.
   * Replacing a schedule without changing its timing keeps its next run. Returns the schedule.
   * @throws ValidationError for a bad id, a bad cron expression or time zone, `every` not a
   * duration of at least 0.01 s, both or neither of `every` and `cron`, or bad task options.
   * @example
   * await queue.schedule('refresh-models', { every: 300, name: 'refresh-models' });
   * await queue.schedule('nightly-report', { cron: '0 3 * * *', tz: 'Europe/Berlin' });
   */
  async schedule(id: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    this.assertOpen();
    validateScheduleId(id);
    const def = buildScheduleDef(id, options, (d) => this.dataCodec.encode(d, 'data'));
    const store = this.requireScheduleStore();
    const json = JSON.stringify(def);
    const next = await store.upsert(id, json, timingKey(def), nextTick(def, Date.now()));
    wakeScheduler(this);
    return toScheduleInfo(def, next, (t) => this.dataCodec.decode(t, 'schedule data'));
  }

  /** Removes the schedule `id`; returns false when there was none. Tasks it submitted stay. */
  async unschedule(id: string): Promise<boolean> {
    this.assertOpen();
    validateScheduleId(id);
    return this.requireScheduleStore().remove(id);
  }

  /** Every schedule of the queue with its next run, ordered by next run (none last). */
  async schedules(): Promise<ScheduleInfo[]> {
    this.assertOpen();
    const all = await this.requireScheduleStore().list();
    return all
      .map((s) =>
        toScheduleInfo(JSON.parse(s.def) as ScheduleDef, s.next, (t) =>
          this.dataCodec.decode(t, 'schedule data'),
        ),
      )
      .sort(
        (a, b) =>
          (a.next?.getTime() ?? Number.POSITIVE_INFINITY) -
            (b.next?.getTime() ?? Number.POSITIVE_INFINITY) || (a.id < b.id ? -1 : 1),
      );
  }

  private requireScheduleStore(): ScheduleStore {
    if (!this.scheduleStore) {
      throw new ValidationError(
        'schedules need the memory or Redis backend; a custom backend has no schedule store',
        { option: 'backend' },
      );
    }
    return this.scheduleStore;
  }

  /**
   * Pauses the queue for every worker of every process: running tasks finish, nothing new is
   * claimed (nor reclaimed) until {@link resume}. Submitting still works. Workers that wait for
   * work see the pause at their next claim; a worker already inside a claim may start one more
   * batch.
   */
  async pause(): Promise<void> {
    this.assertOpen();
    await this.admin().setPaused(true);
  }

  /** Lifts {@link pause}; waiting workers are woken at once. */
  async resume(): Promise<void> {
    this.assertOpen();
    await this.admin().setPaused(false);
  }

  /** Whether the queue is paused (fleet-wide). */
  async isPaused(): Promise<boolean> {
    this.assertOpen();
    return this.admin().isPaused();
  }

  /**
   * Tasks of one status, newest first, `limit` at a time from `offset`. "Newest" is: for
   * `completed`, `failed` and `cancelled` the latest to finish; for `queued` the task that would
   * start last (plain tasks latest submitted first, then prioritized ones from the lowest
   * priority); for `delayed` the latest due; for `processing` the latest started.
   * @example const page2 = await queue.listTasks({ status: 'failed', offset: 50, limit: 50 });
   */
  async listTasks<R = unknown>(options: ListTasksOptions): Promise<TaskInfo<R>[]> {
    this.assertOpen();
    const o = parseListOptions(options);
    const recs = await this.admin().listTasks(o.status, o.offset, o.limit, Date.now());
    return recs.map((r) => this.toInfo<R>(r));
  }

  /**
   * Removes finished tasks (`completed`, `failed` i.e. dead letters, or `cancelled`) that
   * finished at least `olderThan` seconds ago, up to `limit`; returns how many were removed.
   * Waiting and running tasks are never cleaned.
   */
  async clean(options: CleanTasksOptions): Promise<number> {
    this.assertOpen();
    const o = parseCleanOptions(options);
    const now = Date.now();
    return this.admin().clean(o.status, now - o.olderThan * 1000, o.limit, now);
  }

  /**
   * Removes every task and key of the queue (counters, dead letters, the pause flag, schedules). Refuses
   * with a `ConflictError` while tasks run, unless `force` (their results are then dropped and
   * their workers see them as lost).
   */
  async obliterate(options: ObliterateOptions = {}): Promise<void> {
    this.assertOpen();
    const force = parseObliterateOptions(options);
    const r = await this.admin().obliterate(force);
    if (r >= 0) {
      throw new ConflictError(
        `queue ${this.name} has ${r} running task(s); stop its workers or pass { force: true }`,
        { context: { queue: this.name, processing: r } },
      );
    }
    // Schedules are the queue's too: left behind, they would refill the obliterated queue.
    await this.scheduleStore?.clear();
  }

  private admin(): QueueAdminBackend {
    if (!hasAdmin(this.backend)) {
      throw new ValidationError(
        `backend ${this.backend.kind} does not support pause, listing or cleaning`,
        { option: 'backend' },
      );
    }
    return this.backend;
  }

  /** Closes the Redis connection if we created it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.depthTimer) clearInterval(this.depthTimer);
    await this.eventsHub?.close();
    await this.backend.close();
    await this.conn?.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`task queue ${this.name} is closed`);
  }

  private toInfo<R>(rec: TaskRecord): TaskInfo<R> {
    const info: TaskInfo<R> = {
      id: rec.id,
      status: rec.status,
      attempts: rec.attempts,
      createdAt: rec.createdAt,
      updatedAt: rec.updatedAt,
    };
    if (rec.name !== undefined) info.name = rec.name;
    if (rec.status === 'completed') {
      info.result = (
        rec.result === undefined ? null : this.resultCodec.decode(rec.result, 'task result')
      ) as R;
    }
    if (rec.error !== undefined) {
      const err = parseError(rec.error);
      info.error = err.message;
      info.errorName = err.name;
    }
    if (rec.progress !== undefined) info.progress = rec.progress;
    return info;
  }
}

function parseMaxQueued(v: unknown): number | undefined {
  if (v === undefined || v === Number.POSITIVE_INFINITY) return v as number | undefined;
  return assertNumber(v, 'maxQueued', { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER });
}

/** The stored shape of an attempt's error. */
export interface StoredError {
  /** The error's class name (e.g. `TimeoutError`). */
  name: string;
  /** The error message, with server addresses and URL credentials cut out. */
  message: string;
  /** The error's `code`, when it had a string one. */
  code?: string;
  /** For a flow's parent failed by a child: the child's task id. */
  child?: string;
}

/** @internal */
export function encodeError(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const out: StoredError = { name: e.name || 'Error', message: redactAddresses(e.message) };
    if (typeof code === 'string') out.code = code;
    return JSON.stringify(out);
  }
  let message: string;
  try {
    message = typeof e === 'string' ? e : (JSON.stringify(e) ?? String(e));
  } catch {
    message = String(e);
  }
  return JSON.stringify({ name: 'Error', message: redactAddresses(message) });
}

/**
 * Task errors are shown to whoever may read the task (an API's clients, a dashboard): server
 * addresses and credentials in URLs (`redis://user:pass@10.0.0.5:6379`, a connection error's
 * `connect ECONNREFUSED 10.0.0.5:6379`) are cut out before the error is stored.
 */
export function redactAddresses(message: string): string {
  return message
    .replace(
      /\b[a-z][a-z0-9+.-]*:\/\/[^\s'"()<>]+/gi,
      (url) => `${url.slice(0, url.indexOf(':'))}://[redacted]`,
    )
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, '[redacted]')
    .replace(/\[[0-9a-f:]*:[0-9a-f:]+\](?::\d{1,5})?/gi, '[redacted]')
    .replace(/\b(E[A-Z_]{3,})(\s+)[\w.-]+(?::\d{1,5})?/g, '$1$2[redacted]')
    .replace(/\b(password|passwd|pwd|auth)(\s*[=:]\s*)\S+/gi, '$1$2[redacted]');
}

function parseError(text: string | undefined): StoredError {
  if (!text) return { name: 'Error', message: 'unknown error' };
  try {
    const v = JSON.parse(text) as Partial<StoredError>;
    return {
      name: typeof v.name === 'string' ? v.name : 'Error',
      message: typeof v.message === 'string' ? v.message : String(text),
      ...(typeof v.code === 'string' ? { code: v.code } : {}),
      ...(typeof v.child === 'string' ? { child: v.child } : {}),
    };
  } catch {
    return { name: 'Error', message: text };
  }
}

/** The active span's `traceparent`, as a task field, so the worker's span joins the trace. */
function traceField(): { trace?: string } {
  const carrier = currentTraceContext();
  return carrier ? { trace: carrier.traceparent } : {};
}
