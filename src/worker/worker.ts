import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  CancelledError,
  ClosedError,
  TimeoutError,
  ValidationError,
  describeValue,
  isUnrecoverableError,
  isValidationError,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { isTracingEnabled, withSpan, withTraceContext } from '../core/trace.js';
import { messagingSpanAttributes } from '../observability/semconv.js';
import {
  type CounterHandle,
  type GaugeHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import { type LongTimer, assertDuration, setLongTimeout, sleep } from '../core/timers.js';
import {
  assertBoolean,
  assertFunction,
  assertNumber,
  assertObject,
  assertOneOf,
} from '../core/validate.js';
import type { ClaimedTask, Completion, QueueBackend, TaskRef, WorkWaiter } from './backend.js';
import { LazyAbort } from './lazy-abort.js';
import type { BackgroundWorkerOptions } from './worker-options.js';
import { type NamedHandlers, parseHandlers, pickHandler } from './named.js';
import { type LocalCanceller, TaskQueue, encodeError, isTaskQueue } from './queue.js';
import { acquireScheduler, releaseScheduler } from './scheduler.js';
import type {
  SubmitTaskOptions,
  SubmitTasksOptions,
  TaskBackoffOptions,
  TaskContext,
  TaskHandler,
  TaskInfo,
  WaitForResultOptions,
  WorkerEventMap,
  WorkerStopOptions,
} from './types.js';

interface Running {
  ref: TaskRef;
  ac: LazyAbort;
  timer: LongTimer | undefined;
  started: number;
  /** Set when the outcome must not be recorded (cancelled, taken over, released at shutdown). */
  abandoned: boolean;
  done: boolean;
}

interface PendingCompletion {
  c: Completion;
  result: unknown;
  duration: number;
  /** Only acknowledges the delivery of a cancelled task (its status stays `cancelled`). */
  ackOnly?: boolean;
}

type State = 'idle' | 'running' | 'stopping';

/** Claims a worker keeps in flight at once. */
const MAX_CLAIMS_IN_FLIGHT = 2;
/**
 * Tasks a worker may hold claimed beyond its free slots (started as slots free up), so that a
 * claim's round trip overlaps the running of the tasks before it. Only while tasks are short
 * (see {@link PREFETCH_MAX_TASK_MS}): a long task must not sit on a claimed task another worker
 * could run.
 */
const MAX_PREFETCH = 8;
/** Prefetch only while the recent average task takes less than this (ms). */
const PREFETCH_MAX_TASK_MS = 20;

/**
 * Largest `visibilityTimeout`: one year. A lease longer than that only delays the recovery of a
 * dead worker's tasks; every interval derived from it stays between 20 ms and 5 s.
 */
export const MAX_VISIBILITY_SECONDS = 365 * 24 * 3600;
/** Largest `stop()` timeout and `shutdownTimeout`: one day. */
export const MAX_STOP_SECONDS = 24 * 3600;
/**
 * Seconds a stopping worker keeps retrying result writes after its handlers settled, when the
 * stop timeout was already spent waiting for them (capped by the stop timeout itself).
 */
const MIN_STOP_WRITE_SECONDS = 5;

const DEFAULT_BACKOFF: Required<TaskBackoffOptions> = {
  type: 'exponential',
  delay: 1,
  jitter: true,
  maxDelay: 3600,
};

/**
 * Runs a queue's tasks: `numWorkers` at a time in this process, any number of processes per
 * queue. Tasks are fetched in batches, leases are renewed by heartbeats, a dead worker's tasks
 * are reclaimed after `visibilityTimeout`, failed attempts are retried with exponential backoff
 * and jitter, and after the last attempt a task goes to the dead-letter list.
 *
 * @example
 * const worker = new BackgroundWorker({
 *   queue: 'agent-tasks',
 *   redis: process.env.REDIS_URL,
 *   numWorkers: 10,
 *   handler: async (data, ctx) => runAgent(data, { signal: ctx.signal }),
 *   handleSignals: true,
 * });
 * await worker.start();
 */
export class BackgroundWorker<D = unknown, R = unknown> implements LocalCanceller {
  /** Tasks run at once in this process. */
  readonly numWorkers: number;
  /** This worker's consumer name (unique per instance). */
  readonly consumer: string;

  private q: TaskQueue;
  private readonly ownsQueue: boolean;
  private readonly handler: TaskHandler<D, R> | undefined;
  private readonly handlers: NamedHandlers;
  private readonly attempts: number;
  private readonly backoff: Required<TaskBackoffOptions>;
  private readonly timeout: number | undefined;
  private readonly visibilityMs: number;
  private readonly heartbeatMs: number;
  private readonly reclaimEveryMs: number;
  private readonly handleSignals: boolean;
  private readonly shutdownTimeout: number;
  private readonly runScheduler: boolean;
  /** The queue whose scheduler this worker holds, and its error-listener disposer. */
  private scheduling: { queue: TaskQueue; off: () => void } | undefined;
  private readonly events = new Emitter<WorkerEventMap>();

  private state: State = 'idle';
  private readonly running = new Map<string, Running>();
  private completions: PendingCompletion[] = [];
  /** Claimed tasks waiting for a free slot (prefetched; their leases are renewed too). */
  private ready: ClaimedTask[] = [];
  /** Moving average of recent task durations (ms); prefetching is on while it is short. */
  private avgTaskMs = Number.POSITIVE_INFINITY;
  private kickScheduled = false;
  private readonly ops = new Set<Promise<unknown>>();
  private waiter: WorkWaiter | undefined;
  /** Claims sent and not answered yet (at most {@link MAX_CLAIMS_IN_FLIGHT}). */
  private claimsInFlight = 0;
  /** The handling of the last claim sent; the next claim's answer is handled after it. */
  private claimChain: Promise<void> = Promise.resolve();
  /** Slots promised to claims in flight. */
  private reserved = 0;
  /** True while the worker waits for new work (the last claim found the queue empty). */
  private waiting = false;
  private errorDelay = 50;
  private backoffUntil = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private drained: (() => void) | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastReclaim = 0;
  private stopping: Promise<void> | undefined;
  private signalHandler: ((sig: NodeJS.Signals) => void) | undefined;
  /** The one timer that wakes the waiter for the earliest local retry. */
  private retryWake: { at: number; timer: LongTimer } | undefined;

  private readonly mCompleted: CounterHandle;
  private readonly mFailed: CounterHandle;
  private readonly mRetried: CounterHandle;
  private readonly mDuration: HistogramHandle;
  private readonly mActive: GaugeHandle;

  constructor(options: BackgroundWorkerOptions<D, R>) {
    assertObject(options, 'options');
    this.handler =
      options.handler === undefined
        ? undefined
        : assertFunction<TaskHandler<D, R>>(options.handler, 'handler');
    this.handlers = parseHandlers(options.handlers, this.handler !== undefined);
    this.numWorkers =
      options.numWorkers === undefined
        ? 4
        : assertNumber(options.numWorkers, 'numWorkers', { integer: true, min: 1, max: 10_000 });
    this.attempts =
      options.attempts === undefined
        ? 3
        : assertNumber(options.attempts, 'attempts', { integer: true, min: 1, max: 1000 });
    this.backoff = parseBackoff(options.backoff);
    this.timeout =
      options.timeout === undefined ? undefined : assertDuration(options.timeout, 'timeout');
    const vt =
      options.visibilityTimeout === undefined
        ? 30
        : assertDuration(options.visibilityTimeout, 'visibilityTimeout', {
            max: MAX_VISIBILITY_SECONDS,
          });
    this.visibilityMs = vt * 1000;
    this.heartbeatMs = Math.max(20, Math.min(1000, this.visibilityMs / 3));
    this.reclaimEveryMs = Math.max(100, Math.min(5000, this.visibilityMs / 4));
    this.handleSignals = options.handleSignals === true;
    this.runScheduler =
      options.scheduler === undefined ? true : assertBoolean(options.scheduler, 'scheduler');
    this.shutdownTimeout =
      options.shutdownTimeout === undefined
        ? 30
        : assertDuration(options.shutdownTimeout, 'shutdownTimeout', {
            allowZero: true,
            max: MAX_STOP_SECONDS,
          });

    const q = options.queue;
    if (isTaskQueue(q)) {
      for (const option of ['redis', 'store', 'backend'] as const) {
        if (options[option] !== undefined) {
          throw new ValidationError(
            `${option} cannot be given with a TaskQueue instance as queue`,
            {
              option,
            },
          );
        }
      }
      this.q = q;
      this.ownsQueue = false;
    } else if (q === undefined || typeof q === 'string') {
      this.q = new TaskQueue({
        name: q ?? 'default',
        redis: options.redis,
        ...(options.store !== undefined ? { store: options.store } : {}),
        ...(options.backend !== undefined ? { backend: options.backend } : {}),
        resultTtl: options.resultTtl,
        metrics: options.metrics,
        ...(options.maxQueued !== undefined ? { maxQueued: options.maxQueued } : {}),
        ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
        ...(options.events !== undefined ? { events: options.events } : {}),
      });
      this.ownsQueue = true;
    } else {
      throw new ValidationError(
        `queue must be a queue name or a TaskQueue, received ${describeValue(q)}`,
        { option: 'queue' },
      );
    }
    this.consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const metrics: MetricsSink = options.metrics ?? this.q.options.metrics ?? noopMetrics;
    const labels = { queue: this.q.name };
    this.mCompleted = metrics.counter('worker_tasks_completed_total', labels);
    this.mFailed = metrics.counter('worker_tasks_failed_total', labels);
    this.mRetried = metrics.counter('worker_tasks_retried_total', labels);
    this.mDuration = metrics.histogram('worker_task_duration_seconds', labels);
    this.mActive = metrics.gauge('worker_tasks_active', labels);
  }

  /** The queue this worker runs. */
  get queue(): TaskQueue {
    return this.q;
  }

  /** True between {@link start} and {@link stop}. */
  get isRunning(): boolean {
    return this.state === 'running';
  }

  /** Tasks running in this worker now. */
  get activeCount(): number {
    return this.running.size;
  }

  private get backend(): QueueBackend {
    return this.q.backend;
  }

  /** Adds a listener; returns a disposer. Events: `completed`, `failed`, `retrying`, `deadLettered`, `error`. */
  on<K extends keyof WorkerEventMap>(event: K, listener: WorkerEventMap[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof WorkerEventMap>(event: K, listener: WorkerEventMap[K]): void {
    this.events.off(event, listener);
  }

  /** Same as {@link TaskQueue.submitTask} on this worker's queue (the seed's single-process form). */
  submitTask(data: unknown, options?: SubmitTaskOptions): Promise<string> {
    return this.q.submitTask(data, options);
  }

  /** Same as {@link TaskQueue.submitTasks}. */
  submitTasks(items: readonly unknown[], options?: SubmitTasksOptions): Promise<string[]> {
    return this.q.submitTasks(items, options);
  }

  /** Same as {@link TaskQueue.getTask}. */
  getTask<T = R>(id: string): Promise<TaskInfo<T> | null> {
    return this.q.getTask<T>(id);
  }

  /** Same as {@link TaskQueue.waitForResult}. */
  waitForResult<T = R>(id: string, options?: WaitForResultOptions): Promise<T> {
    return this.q.waitForResult<T>(id, options);
  }

  /** Same as {@link TaskQueue.cancelTask}. */
  cancelTask(id: string): Promise<boolean> {
    return this.q.cancelTask(id);
  }

  /** Starts taking tasks. Resolves once the worker runs; a second call does nothing. */
  async start(): Promise<void> {
    if (this.state === 'running') return;
    if (this.stopping) await this.stopping;
    if (this.q.isClosed) {
      if (!this.ownsQueue) throw new ClosedError(`task queue ${this.q.name} is closed`);
      this.q = new TaskQueue(this.q.options);
    }
    this.waiter = await this.backend.openWaiter();
    this.state = 'running';
    this.q.localWorkers.add(this);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatMs);
    this.heartbeatTimer.unref();
    this.lastReclaim = 0;
    this.waiting = false;
    this.pump();
    if (this.runScheduler && !this.scheduling) {
      const scheduler = acquireScheduler(this.q);
      if (scheduler) {
        this.scheduling = { queue: this.q, off: scheduler.onError((e) => this.emitError(e)) };
      }
    }
    if (this.handleSignals && !this.signalHandler) {
      const handler = (sig: NodeJS.Signals) => {
        process.off('SIGTERM', handler);
        process.off('SIGINT', handler);
        this.signalHandler = undefined;
        void this.stop({ timeout: this.shutdownTimeout })
          .catch(() => undefined)
          .finally(() => {
            // Re-raise so the process ends as it would have without us, unless the app listens.
            if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
          });
      };
      this.signalHandler = handler;
      process.on('SIGTERM', handler);
      process.on('SIGINT', handler);
    }
  }

  /**
   * Stops taking tasks, lets running ones finish for up to `timeout` seconds, then aborts the rest
   * (`ctx.signal`) and gives them back to the queue at once, so another worker takes them
   * without waiting for `visibilityTimeout`. Closes the queue if the worker created it.
   */
  stop(options: WorkerStopOptions = {}): Promise<void> {
    let timeout: number;
    try {
      assertObject(options, 'options');
      timeout =
        options.timeout === undefined
          ? 30
          : assertDuration(options.timeout, 'timeout', { allowZero: true, max: MAX_STOP_SECONDS });
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.stopping) return this.stopping;
    if (this.state !== 'running') {
      return this.ownsQueue ? this.q.close() : Promise.resolve();
    }
    this.stopping = this.doStop(timeout).finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  private async doStop(timeout: number): Promise<void> {
    this.state = 'stopping';
    if (this.scheduling) {
      const { queue, off } = this.scheduling;
      this.scheduling = undefined;
      off();
      await releaseScheduler(queue);
    }
    if (this.signalHandler) {
      process.off('SIGTERM', this.signalHandler);
      process.off('SIGINT', this.signalHandler);
      this.signalHandler = undefined;
    }
    await this.waiter?.close();
    // Claims in flight still hand us tasks; they run (or are released) like the others.
    while (this.claimsInFlight > 0) await Promise.allSettled([...this.ops]);
    const deadline = performance.now() + timeout * 1000;
    while (this.running.size > 0 && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
        setTimeout(resolve, Math.min(50, Math.max(1, deadline - performance.now()))).unref();
      });
    }
    this.drained = undefined;
    const left: TaskRef[] = this.ready.map(refOf);
    this.ready = [];
    for (const r of [...this.running.values()]) {
      r.abandoned = true;
      left.push(r.ref);
      r.ac.abort(new CancelledError(`task ${r.ref.id} was released: the worker is shutting down`));
      this.finishRun(r);
    }
    this.retryWake?.timer.clear();
    this.retryWake = undefined;
    clearTimeout(this.backoffTimer);
    this.backoffTimer = undefined;
    // A handler that returned must not run again because its result met a Redis hiccup: the
    // result is retried until written, within the stop timeout (at least a short window after
    // the handlers settled). Only what still failed then is released and runs again.
    const writeDeadline = Math.max(
      deadline,
      performance.now() + Math.min(timeout, MIN_STOP_WRITE_SECONDS) * 1000,
    );
    await this.settleWrites(writeDeadline);
    clearInterval(this.heartbeatTimer);
    try {
      await this.backend.release(this.consumer, left, Date.now());
    } catch (e) {
      this.emitError(e);
    }
    this.q.localWorkers.delete(this);
    this.state = 'idle';
    if (this.ownsQueue) await this.q.close();
  }

  /**
   * Writes pending results (and waits for pending failure writes), retrying failed result writes
   * with a growing pause until they are written or `deadline` (a `performance.now()` time) passes.
   */
  private async settleWrites(deadline: number): Promise<void> {
    let pause = 50;
    for (;;) {
      while (this.ops.size > 0) await Promise.allSettled([...this.ops]);
      await this.flush();
      if (this.completions.length === 0 && this.ops.size === 0) return;
      const left = deadline - performance.now();
      if (left <= 0) return;
      await sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, 1000);
    }
  }

  /** @internal Aborts a task running here at once (called by cancelTask in this process). */
  abortLocal(taskId: string): void {
    const i = this.ready.findIndex((t) => t.id === taskId);
    if (i >= 0) {
      const [t] = this.ready.splice(i, 1);
      if (t) this.ackRef(refOf(t));
      return;
    }
    const r = this.running.get(taskId);
    if (!r || r.done) return;
    r.abandoned = true;
    r.ac.abort(new CancelledError(`task ${taskId} was cancelled`));
    this.finishRun(r);
    this.ackCancelled(r);
  }

  /**
   * A cancelled task is terminal, so a "completion" of it changes nothing but acknowledges the
   * delivery: the task stops counting as processing at once instead of after a reclaim.
   */
  private ackCancelled(r: Running): void {
    this.ackRef(r.ref);
  }

  private ackRef(ref: TaskRef): void {
    this.completions.push({
      c: { ...ref, result: 'null' },
      result: null,
      duration: 0,
      ackOnly: true,
    });
    this.kick();
  }

  /**
   * Coalesces wake-ups to once per event-loop turn: every task that finishes in this turn frees
   * its slot first, so the next claim fetches a batch rather than one task.
   */
  private kick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.startReady();
      this.pump();
      // Results no claim took along are written on their own, never held back.
      if (this.completions.length > 0) this.track(this.flush());
    });
  }

  /**
   * Sends claims for free slots. Up to two claims are in flight at once (the second only for at
   * least half the slots), so one batch's round trip overlaps the other batch's processing
   * without the worker ever holding more tasks than it has slots.
   */
  private pump(): void {
    if (this.state !== 'running' || this.waiting) return;
    const backoff = this.backoffUntil - Date.now();
    if (backoff > 0) {
      // Still backing off after an error. Someone must wake us when it ends: the error's own
      // timer can fire a millisecond before Date.now() passes backoffUntil, and a worker that
      // returned here with nothing scheduled stalled for good after an outage.
      if (!this.backoffTimer) {
        this.backoffTimer = setTimeout(() => {
          this.backoffTimer = undefined;
          this.kick();
        }, backoff + 1);
        this.backoffTimer.unref();
      }
      return;
    }
    const capacity =
      this.numWorkers +
      (this.avgTaskMs < PREFETCH_MAX_TASK_MS ? Math.min(this.numWorkers, MAX_PREFETCH) : 0);
    while (this.claimsInFlight < MAX_CLAIMS_IN_FLIGHT) {
      const free = capacity - this.running.size - this.ready.length - this.reserved;
      if (free <= 0) return;
      if (this.claimsInFlight > 0 && free < Math.ceil(capacity / 2)) return;
      // From a standstill, split the slots over two claims so that their round trips overlap.
      this.sendClaim(this.claimsInFlight === 0 && free >= 2 ? Math.ceil(free / 2) : free);
    }
  }

  private sendClaim(count: number): void {
    this.reserved += count;
    this.claimsInFlight++;
    const batch = this.takeCompletions();
    const now = Date.now();
    const reclaim = now - this.lastReclaim >= this.reclaimEveryMs;
    if (reclaim) this.lastReclaim = now;
    const sent = this.backend.claim({
      consumer: this.consumer,
      count,
      now,
      reclaimIdleMs: reclaim ? this.visibilityMs : 0,
      defaultAttempts: this.attempts,
      completions: batch.map((b) => b.c),
    });
    // Answers are handled in the order the claims were sent (the earlier claim took the earlier
    // tasks), whatever order their promises settle in.
    // (Marked handled at once: a failure waiting for its turn is not an unhandled rejection.)
    sent.catch(() => undefined);
    const op = this.claimChain
      .then(() => sent)
      .then(
        (res) => {
          this.reserved -= count;
          this.claimsInFlight--;
          this.errorDelay = 50;
          this.completed(batch);
          for (const t of res.tasks) this.accept(t);
          // A short answer means the queue ran dry: it never triggers another claim itself (two
          // claims would otherwise chase each other over an empty queue). The last claim to come
          // back decides: short, wait for new work; full, claim on.
          const short = res.tasks.length < count;
          if (this.claimsInFlight > 0) {
            if (!short) this.pump();
          } else if (short) void this.idle(res.token, res.nextDueAt);
          else this.pump();
        },
        (e) => {
          this.reserved -= count;
          this.claimsInFlight--;
          if (reclaim) this.lastReclaim = 0;
          // Keep the results: they go out with the next call.
          this.completions = batch.concat(this.completions);
          this.emitError(e);
          this.backoffUntil = Date.now() + this.errorDelay;
          setTimeout(() => this.kick(), this.errorDelay).unref();
          this.errorDelay = Math.min(this.errorDelay * 2, 5000);
        },
      );
    this.claimChain = op;
    this.track(op);
  }

  /** The queue looked empty: write pending results, then wait for a sign of new work. */
  private async idle(token: string, nextDueAt: number | null): Promise<void> {
    if (this.state !== 'running') return;
    this.waiting = true;
    if (this.completions.length > 0) this.track(this.flush());
    let waitMs = this.reclaimEveryMs;
    if (nextDueAt !== null) waitMs = Math.min(waitMs, nextDueAt - Date.now());
    if (waitMs > 0) await this.waiter?.wait(token, waitMs);
    this.waiting = false;
    this.pump();
  }

  /** Runs a claimed task now if a slot is free, else keeps it until one is. */
  private accept(t: ClaimedTask): void {
    // Handed the same task again (our lease lapsed and we reclaimed it): the older turn is void.
    if (this.ready.length > 0) this.ready = this.ready.filter((r) => r.id !== t.id);
    if (this.running.size < this.numWorkers && this.ready.length === 0) this.runTask(t);
    else this.ready.push(t);
  }

  /** Starts prefetched tasks in free slots. */
  private startReady(): void {
    while (this.state === 'running' && this.ready.length > 0) {
      if (this.running.size >= this.numWorkers) return;
      this.runTask(this.ready.shift() as ClaimedTask);
    }
  }

  private runTask(t: ClaimedTask): void {
    const prev = this.running.get(t.id);
    if (prev) {
      // We were handed the task again (our lease lapsed and we reclaimed it): the old run is void.
      prev.abandoned = true;
      prev.ac.abort(new CancelledError(`task ${t.id} was taken over by a newer attempt`));
      this.finishRun(prev);
    }
    const ac = new LazyAbort();
    const run: Running = {
      ref: { id: t.id, lane: t.lane, entryId: t.entryId, attempt: t.attempt },
      ac,
      timer: undefined,
      started: performance.now(),
      abandoned: false,
      done: false,
    };
    this.running.set(t.id, run);
    this.mActive.inc();
    const timeout = t.timeout > 0 ? t.timeout : this.timeout;
    if (timeout !== undefined) {
      // Chained past Node's 24.8-day timer limit: a 30-day timeout must not fire at once.
      run.timer = setLongTimeout(() => {
        const err = new TimeoutError(`task ${t.id} timed out after ${timeout} s`, {
          context: { taskId: t.id, timeout },
        });
        ac.abort(err);
        this.onFailure(run, err, t.maxAttempts);
      }, timeout * 1000);
    }
    const handler = pickHandler(this.handlers, this.handler, t.name);
    if (typeof handler !== 'function') {
      // Retrying cannot help: the same fleet would take it again. Dead-letter it, not lose it.
      this.onFailure(run, handler, 1, true);
      return;
    }
    let data: D;
    try {
      data = this.q.resultCodec.decode<D>(t.data, 'task data');
    } catch (e) {
      this.onFailure(run, e, 1);
      return;
    }
    const ref = run.ref;
    const ctx: TaskContext = {
      taskId: t.id,
      attempt: t.attempt,
      get signal() {
        return ac.signal;
      },
      progress: async (n: number) => {
        assertNumber(n, 'progress');
        if (!run.done) await this.backend.progress(ref, n, Date.now());
      },
      childResults: <T>() => this.q.childResults<T>(t.id),
    };
    let p: Promise<R>;
    try {
      p = Promise.resolve(
        isTracingEnabled()
          ? // The span joins the submitter's trace (its traceparent travels with the task).
            withTraceContext(t.trace ? { traceparent: t.trace } : undefined, () =>
              withSpan(
                'azscale.worker.process',
                {
                  'azscale.queue': this.q.name,
                  'azscale.task_id': t.id,
                  'azscale.task.attempt': t.attempt,
                  ...messagingSpanAttributes({
                    system: this.q.backend.kind,
                    destination: this.q.name,
                    operation: 'process',
                    messageId: t.id,
                    // The Redis backend's consumer group (redis-backend.ts GROUP).
                    consumerGroup: this.q.backend.kind === 'redis' ? 'workers' : undefined,
                  }),
                },
                () => handler(data, ctx),
                { kind: 'consumer' },
              ),
            )
          : handler(data, ctx),
      );
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (result) => this.onSuccess(run, result, t.maxAttempts),
      (e) => this.onFailure(run, e, t.maxAttempts),
    );
  }

  private finishRun(run: Running): boolean {
    if (run.done) return false;
    run.done = true;
    run.timer?.clear();
    const ms = performance.now() - run.started;
    this.avgTaskMs =
      this.avgTaskMs === Number.POSITIVE_INFINITY ? ms : this.avgTaskMs * 0.8 + ms * 0.2;
    if (this.running.get(run.ref.id) === run) this.running.delete(run.ref.id);
    this.mActive.dec();
    if (this.drained && this.running.size === 0) this.drained();
    this.kick();
    return true;
  }

  private onSuccess(run: Running, result: R, maxAttempts: number): void {
    if (run.done) return;
    if (run.abandoned) {
      this.finishRun(run);
      return;
    }
    let text: string;
    try {
      text = this.q.resultCodec.encode(result === undefined ? null : result, 'task result');
    } catch (e) {
      // A result that cannot be stored will not become storable on a retry.
      this.onFailure(run, e, maxAttempts, true);
      return;
    }
    const duration = (performance.now() - run.started) / 1000;
    this.finishRun(run);
    this.completions.push({ c: { ...run.ref, result: text }, result, duration });
  }

  private onFailure(run: Running, e: unknown, maxAttempts: number, unrecoverable = false): void {
    if (run.done) return;
    this.finishRun(run);
    if (run.abandoned) return;
    const max = maxAttempts > 0 ? maxAttempts : this.attempts;
    const final =
      unrecoverable || isUnrecoverableError(e) || isValidationError(e) || run.ref.attempt >= max;
    const now = Date.now();
    const delay = final ? 0 : backoffSeconds(this.backoff, run.ref.attempt);
    const retryAt = final ? null : now + Math.round(delay * 1000);
    const error = e instanceof Error ? e : new Error(String(e));
    const op = this.backend
      .fail([{ ...run.ref, error: encodeError(e), retryAt }], now)
      .then(([outcome]) => {
        const ev = { taskId: run.ref.id, attempt: run.ref.attempt, error };
        if (outcome === 'retry') {
          this.mRetried.inc();
          this.events.emit('retrying', { ...ev, retryDelay: delay });
          if (retryAt !== null && retryAt > now) this.wakeAt(retryAt);
        } else if (outcome === 'dead') {
          this.mFailed.inc();
          this.events.emit('failed', ev);
          this.events.emit('deadLettered', ev);
        }
      })
      .catch((err) => this.emitError(err));
    this.track(op);
  }

  /**
   * Wakes the waiter when a local retry becomes due. One timer, for the earliest retry, however
   * many tasks wait: later ones are found by the claim that follows (it reports the next due time).
   */
  private wakeAt(at: number): void {
    if (this.retryWake && this.retryWake.at <= at) return;
    this.retryWake?.timer.clear();
    const timer = setLongTimeout(
      () => {
        this.retryWake = undefined;
        if (this.state === 'running') void this.waiter?.notify();
      },
      Math.max(0, at - Date.now()) + 2,
      true,
    );
    this.retryWake = { at, timer };
  }

  private takeCompletions(): PendingCompletion[] {
    const c = this.completions;
    this.completions = [];
    return c;
  }

  private async flush(): Promise<void> {
    const batch = this.takeCompletions();
    if (batch.length === 0) return;
    try {
      await this.backend.complete(
        batch.map((b) => b.c),
        Date.now(),
      );
      this.completed(batch);
    } catch (e) {
      this.completions = batch.concat(this.completions);
      this.emitError(e);
      if (this.state === 'running') setTimeout(() => this.kick(), 200).unref();
    }
  }

  private completed(batch: PendingCompletion[]): void {
    for (const b of batch) {
      if (b.ackOnly) continue;
      this.mCompleted.inc();
      this.mDuration.observe(b.duration);
      if (this.events.has('completed')) {
        this.events.emit('completed', {
          taskId: b.c.id,
          attempt: b.c.attempt,
          result: b.result,
          duration: b.duration,
        });
      }
    }
  }

  private heartbeat(): void {
    // Results not yet written keep their lease too: otherwise a Redis hiccup longer than
    // visibilityTimeout would let another worker run a task whose handler already returned.
    const unwritten = this.completions.filter((c) => !c.ackOnly).map((c) => c.c);
    if (this.running.size === 0 && unwritten.length === 0 && this.ready.length === 0) return;
    const runs = [...this.running.values()];
    const ready = this.ready.slice();
    const op = this.backend
      .heartbeat(
        this.consumer,
        runs
          .map((r) => r.ref)
          .concat(ready.map(refOf))
          .concat(
            unwritten.map(({ id, lane, entryId, attempt }) => ({ id, lane, entryId, attempt })),
          ),
        Date.now(),
      )
      .then((outcomes) => {
        ready.forEach((t, j) => {
          const o = outcomes[runs.length + j];
          if (o === undefined || o === 'ok') return;
          const k = this.ready.indexOf(t);
          if (k < 0) return;
          this.ready.splice(k, 1);
          if (o === 'cancelled') this.ackRef(refOf(t));
        });
        outcomes.slice(0, runs.length).forEach((o, i) => {
          const r = runs[i];
          if (!r || r.done || o === 'ok') return;
          r.abandoned = true;
          r.ac.abort(
            o === 'cancelled'
              ? new CancelledError(`task ${r.ref.id} was cancelled`)
              : new CancelledError(`task ${r.ref.id} was taken over by another worker`),
          );
          this.finishRun(r);
          // A lost delivery belongs to its new holder now: only a cancelled one is ours to ack.
          if (o === 'cancelled') this.ackCancelled(r);
        });
      })
      .catch((e) => this.emitError(e));
    this.track(op);
  }

  private track(p: Promise<unknown>): void {
    this.ops.add(p);
    const done = () => {
      this.ops.delete(p);
    };
    p.then(done, done);
  }

  private emitError(e: unknown): void {
    this.events.emit('error', e instanceof Error ? e : new Error(String(e)));
  }
}

function refOf(t: ClaimedTask): TaskRef {
  return { id: t.id, lane: t.lane, entryId: t.entryId, attempt: t.attempt };
}

function parseBackoff(b: TaskBackoffOptions | undefined): Required<TaskBackoffOptions> {
  if (b === undefined) return DEFAULT_BACKOFF;
  assertObject(b, 'backoff');
  return {
    type:
      b.type === undefined
        ? 'exponential'
        : assertOneOf(b.type, 'backoff.type', ['exponential', 'fixed']),
    delay:
      b.delay === undefined ? 1 : assertDuration(b.delay, 'backoff.delay', { allowZero: true }),
    jitter: b.jitter === undefined ? true : assertBoolean(b.jitter, 'backoff.jitter'),
    maxDelay:
      b.maxDelay === undefined
        ? 3600
        : assertDuration(b.maxDelay, 'backoff.maxDelay', { allowZero: true }),
  };
}

/** Seconds before attempt `attempt + 1`, with "equal jitter": uniformly in [d/2, d]. */
export function backoffSeconds(b: Required<TaskBackoffOptions>, attempt: number): number {
  const base = b.type === 'fixed' ? b.delay : b.delay * 2 ** Math.max(0, attempt - 1);
  const d = Math.min(base, b.maxDelay);
  return b.jitter ? d / 2 + (Math.random() * d) / 2 : d;
}
