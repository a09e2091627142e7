import { randomUUID } from 'node:crypto';
import pLimit, { type LimitFunction } from 'p-limit';
import {
  type BackendOptions,
  type ResolvedBackend,
  hasMethods,
  resolveBackend,
} from '../core/backend.js';
import type { RedisConnectionOptions, RedisInput } from '../core/connection.js';
import {
  CancelledError,
  ClosedError,
  LimitExceededError,
  QueueTimeoutError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId } from '../core/keys.js';
import {
  type CounterHandle,
  type GaugeHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import { type LongTimer, setLongTimeout } from '../core/timers.js';
import { assertFunction, assertNumber } from '../core/validate.js';
import {
  type AnyMethod,
  type ResilienceDecorator,
  methodDecorator,
  perInstance,
} from './decorate.js';
import { assertSignal, optionsObject, seconds } from './options.js';
import { RedisSemaphoreStore } from './redis-store.js';
import type { SemaphoreAcquireResult, SemaphoreStore } from './store.js';
import { isTracingEnabled, withSpan } from '../core/trace.js';

/** Options of {@link ConcurrencyLimiter}. */
export interface ConcurrencyLimiterOptions extends BackendOptions<SemaphoreStore> {
  /**
   * Calls (total weight) in flight at once: in this process, or with `redis` across every process
   * sharing `key`. The seed's `llm_concurrent_requests` presets are 5, 10, 20 and 50.
   */
  concurrency: number;
  /**
   * A Redis URL, ioredis client or `{ nodes }` Cluster: the limit then holds across every process
   * that uses the same `key`, as a lease semaphore (see `leaseTtl`). Without it the limit is
   * per process (p-limit).
   */
  redis?: RedisInput;
  /** Names the shared limit, e.g. `"llm:openai"` (with `redis`). @default 'default' */
  key?: string;
  /** Redis key prefix. @default 'azs:limit:' */
  prefix?: string;
  /**
   * Callers that may wait for a slot in this process (counted in weight). A caller beyond it is
   * refused at once with {@link LimitExceededError}. @default 1000
   */
  maxQueue?: number;
  /**
   * Seconds a caller may wait for a slot before {@link QueueTimeoutError} (a
   * {@link LimitExceededError} and a `TimeoutError`). Time spent running is not limited here.
   * Any size up to 10 years works (timers past 24.8 days are chained).
   * @default no limit
   */
  queueTimeout?: number;
  /**
   * Seconds a distributed slot stays held without renewal (at most 10 years). The holder renews
   * every `leaseTtl / 3` seconds (at least hourly) while it runs; a holder killed with SIGKILL
   * frees its slot within `leaseTtl`. Keep it above the longest event-loop stall you expect.
   * @default 30
   */
  leaseTtl?: number;
  /** Seconds between attempts of a waiting caller on a full distributed limit (at most 60). @default 0.05 */
  pollInterval?: number;
  /**
   * A semaphore store (advanced; e.g. a {@link MemorySemaphoreStore} shared in-process), never
   * closed by the limiter. `backend` is accepted as an alias. Cannot be combined with `redis`.
   */
  store?: SemaphoreStore;
  /**
   * Connection options (seconds) for a Redis this limiter creates; `redisOptions` and the
   * top-level `connectTimeout`/`commandTimeout` are accepted as aliases.
   * @default {}
   */
  connection?: RedisConnectionOptions;
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Options of one {@link ConcurrencyLimiter.run} call. */
export interface LimiterRunOptions {
  /** Slots this call takes (1..concurrency), e.g. a large prompt counting as 2. @default 1 */
  weight?: number;
  /**
   * Aborts the wait for a slot ({@link CancelledError}). It is also passed on to the function,
   * which decides whether to stop.
   */
  signal?: AbortSignal;
}

/** Events of a {@link ConcurrencyLimiter}. */
export type LimiterEvents = {
  /** A running call's distributed lease was lost (not renewed in time); its signal aborted. */
  leaseLost: (info: { key: string; leaseId: string }) => void;
  /** A lease renewal or release failed against the backend. */
  error: (error: unknown) => void;
};

interface Waiter {
  weight: number;
  leaseId: string;
  state: 0 | 1 | 2; // waiting, granted, cancelled
  resolve: () => void;
  reject: (e: unknown) => void;
}

const DEFAULT_MAX_QUEUE = 1000;
const SEMAPHORE_METHODS = ['acquire', 'renew', 'release', 'leave', 'used', 'close'];
// The longest pollInterval (seconds): a waiter polling less often than once a minute is not waiting.
const MAX_POLL_INTERVAL = 60;
// A held lease is renewed at least hourly, whatever its leaseTtl.
const MAX_RENEW_MS = 3_600_000;
// Most acquire scripts one process has in flight at once.
const MAX_BATCH = 32;

/**
 * Bounds the calls in flight. Without `redis` it is p-limit with a bounded queue, a queue
 * timeout, weights and abort signals. With `redis` it is a Redis lease semaphore shared by every
 * process using the same `key`: acquire and release are single Lua scripts, a holder renews its
 * lease while it runs, and a crashed holder's slot comes back after `leaseTtl` seconds.
 *
 * @example
 * const llm = new ConcurrencyLimiter({ concurrency: 10, redis: process.env.REDIS_URL, key: 'llm:openai' });
 * const answer = await llm.run(() => openai.chat.completions.create(req));
 */
export class ConcurrencyLimiter {
  /** The limit (total weight in flight). */
  readonly concurrency: number;
  /** The shared key (with `redis`). */
  readonly key: string;
  /** True when the limit is distributed (Redis or a given store). */
  readonly distributed: boolean;

  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number | undefined;
  private readonly leaseTtlMs: number;
  private readonly renewMs: number;
  private readonly pollMs: number;
  private readonly staleMs: number;
  // Identifies this limiter instance in the store's line of waiting processes.
  private readonly waiterId = randomUUID();
  private readonly store: SemaphoreStore | undefined;
  private readonly backend: ResolvedBackend<SemaphoreStore | undefined>;
  private readonly events = new Emitter<LimiterEvents>();
  private readonly plimit: LimitFunction | undefined;
  private activeCalls = 0;
  private heldWeight = 0;
  private waitingCalls = 0;
  private waitingWeight = 0;
  // Local mode counts on p-limit's own activeCount/pendingCount (so the hot path adds nothing);
  // these correct them for the slow path, where a call of weight w is w p-limit jobs.
  private slowUnstarted = 0; // slow-path jobs queued in p-limit, not started (ghosts included)
  private ghosts = 0; // unstarted jobs of calls that were cancelled while waiting
  private slowHeld = 0; // slow-path jobs holding a p-limit slot
  private slowRunning = 0;
  private slowWaiting = 0;
  private waiters: Waiter[] = [];
  private pumping = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly m: {
    rejected: CounterHandle;
    timedOut: CounterHandle;
    wait: HistogramHandle;
    active: GaugeHandle;
  };

  constructor(options: ConcurrencyLimiterOptions) {
    const o = optionsObject<ConcurrencyLimiterOptions>(options, 'options');
    if (o.concurrency === undefined) {
      throw new ValidationError('concurrency is required (a positive integer)', {
        option: 'concurrency',
      });
    }
    this.concurrency = assertNumber(o.concurrency, 'concurrency', { integer: true, min: 1 });
    this.key = o.key === undefined ? 'default' : validateId(o.key, 'key');
    this.maxQueue =
      o.maxQueue === undefined
        ? DEFAULT_MAX_QUEUE
        : o.maxQueue === Number.POSITIVE_INFINITY
          ? o.maxQueue
          : assertNumber(o.maxQueue, 'maxQueue', { integer: true, min: 0 });
    this.queueTimeoutMs =
      o.queueTimeout === undefined ? undefined : seconds(o.queueTimeout, 'queueTimeout', 0) * 1000;
    this.leaseTtlMs = seconds(o.leaseTtl, 'leaseTtl', 30) * 1000;
    // Renewing more often than needed costs a round trip; never renewing (a Node timer past
    // 2^31-1 ms fires after 1 ms, so it would renew in a loop) is what must not happen.
    this.renewMs = Math.max(1, Math.min(this.leaseTtlMs / 3, MAX_RENEW_MS));
    this.pollMs = seconds(o.pollInterval, 'pollInterval', 0.05, MAX_POLL_INTERVAL) * 1000;
    // A waiting process polls every pollInterval (x1.5 jitter); miss many and it is presumed dead.
    this.staleMs = Math.max(2000, this.pollMs * 20);
    // Embedded, the limit is p-limit in this process (no store): see docs/resilience.md.
    this.backend = resolveBackend(o, {
      module: 'ConcurrencyLimiter',
      storeName: 'SemaphoreStore',
      prefix: 'azs:limit:',
      memory: () => undefined,
      redis: (conn, { prefix }) => new RedisSemaphoreStore(conn, { prefix }),
      validateStore: (x): x is SemaphoreStore => hasMethods(x, SEMAPHORE_METHODS),
    });
    this.store = this.backend.store;
    this.distributed = this.store !== undefined;
    this.plimit = this.store ? undefined : pLimit(this.concurrency);
    const metrics = o.metrics ?? noopMetrics;
    const labels = { limiter: this.key };
    this.m = {
      rejected: metrics.counter('resilience_limiter_rejected_total', {
        ...labels,
        reason: 'queue_full',
      }),
      timedOut: metrics.counter('resilience_limiter_rejected_total', {
        ...labels,
        reason: 'queue_timeout',
      }),
      wait: metrics.histogram('resilience_limiter_wait_seconds', labels),
      active: metrics.gauge('resilience_limiter_active', labels),
    };
  }

  /** Calls running in this process. */
  get activeCount(): number {
    const l = this.plimit;
    // p-limit counts a job at dequeue, a microtask before it runs: clamp that moment away.
    return l ? Math.max(0, l.activeCount - this.slowHeld) + this.slowRunning : this.activeCalls;
  }

  /** Calls waiting for a slot in this process. */
  get pendingCount(): number {
    const l = this.plimit;
    return l
      ? Math.max(0, l.pendingCount - this.slowUnstarted) + this.slowWaiting
      : this.waitingCalls;
  }

  /** Weight (slots) held in this process (by running calls, and by a weighted call gathering its slots). */
  get activeWeight(): number {
    return this.plimit ? this.plimit.activeCount : this.heldWeight;
  }

  /**
   * Weight in flight for the whole limit: every process sharing `key` when distributed (read
   * from the backend, expired leases reclaimed first), this process otherwise.
   */
  async inFlight(): Promise<number> {
    return this.store ? this.store.used(this.key) : this.activeWeight;
  }

  /** Adds an event listener; returns a disposer. */
  on<K extends keyof LimiterEvents>(event: K, listener: LimiterEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /**
   * Runs `fn` when a slot is free. Refuses at once with {@link LimitExceededError} when the
   * queue is full, with {@link QueueTimeoutError} after `queueTimeout` seconds of waiting, and
   * with {@link CancelledError} when `signal` aborts while waiting.
   *
   * `fn` receives an AbortSignal when there is one: the caller's `signal`, and with `redis` a
   * signal that also aborts if the call's lease is lost.
   */
  run<T>(
    fn: (signal?: AbortSignal) => T | PromiseLike<T>,
    options?: LimiterRunOptions,
  ): Promise<Awaited<T>> {
    if (!isTracingEnabled()) return this.runUntraced(fn, options);
    return withSpan(
      'azscale.limiter.run',
      {
        'azscale.limiter.key': this.key,
        'azscale.limiter.distributed': this.store !== undefined,
        'azscale.limiter.active': this.activeCount,
        'azscale.limiter.pending': this.pendingCount,
      },
      () => this.runUntraced(fn, options),
    );
  }

  private runUntraced<T>(
    fn: (signal?: AbortSignal) => T | PromiseLike<T>,
    options?: LimiterRunOptions,
  ): Promise<Awaited<T>> {
    if (typeof fn !== 'function') {
      try {
        assertFunction(fn, 'fn');
      } catch (e) {
        return Promise.reject(e);
      }
    }
    if (this.closed) return Promise.reject(this.closedError());
    let weight = 1;
    let signal: AbortSignal | undefined;
    if (options !== undefined) {
      try {
        const o = optionsObject<LimiterRunOptions>(options, 'options');
        if (o.weight !== undefined) {
          weight = assertNumber(o.weight, 'weight', { integer: true, min: 1 });
          if (weight > this.concurrency) {
            throw new ValidationError(
              `weight ${weight} is above the limit concurrency=${this.concurrency}: the call could never run`,
              { option: 'weight', context: { weight, concurrency: this.concurrency } },
            );
          }
        }
        signal = assertSignal(o.signal);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const l = this.plimit;
    const admitted = l
      ? l.activeCount + l.pendingCount - this.ghosts
      : this.heldWeight + this.waitingWeight;
    if (admitted + weight > this.concurrency + this.maxQueue) {
      this.m.rejected.inc();
      return Promise.reject(
        new LimitExceededError(
          `limiter ${JSON.stringify(this.key)} queue is full (maxQueue=${this.maxQueue}, concurrency=${this.concurrency})`,
          { context: { key: this.key, maxQueue: this.maxQueue, concurrency: this.concurrency } },
        ),
      );
    }
    if (signal?.aborted) return Promise.reject(this.cancelledError(signal));
    if (this.store) return this.runDistributed(fn, weight, signal) as Promise<Awaited<T>>;
    if (weight === 1 && signal === undefined && this.queueTimeoutMs === undefined) {
      // The hot path: p-limit itself, nothing added.
      return (l as LimitFunction)(fn) as Promise<Awaited<T>>;
    }
    return this.runLocal(fn, weight, signal) as Promise<Awaited<T>>;
  }

  // p-limit with cancellation and weights: a call of weight w queues w p-limit jobs. They are
  // enqueued back to back and p-limit starts jobs in order, so at most one call holds part of
  // its slots at a time and it always gets the rest: no deadlock.
  private runLocal(
    fn: (signal?: AbortSignal) => unknown,
    weight: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const limit = this.plimit as LimitFunction;
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      let state: 0 | 1 | 2 = 0;
      let held = 0;
      const holds: (() => void)[] = [];
      let timer: LongTimer | undefined;
      this.slowWaiting++;
      this.slowUnstarted += weight;
      const freeHolds = () => {
        this.slowHeld -= holds.length;
        for (const h of holds.splice(0)) h();
      };
      const cleanup = () => {
        timer?.clear();
        signal?.removeEventListener('abort', onAbort);
      };
      const cancel = (e: unknown) => {
        if (state !== 0) return;
        state = 2;
        this.slowWaiting--;
        this.ghosts += weight - held;
        cleanup();
        freeHolds();
        reject(e);
      };
      const onAbort = () => cancel(this.cancelledError(signal as AbortSignal));
      if (this.queueTimeoutMs !== undefined) {
        const ms = this.queueTimeoutMs;
        timer = setLongTimeout(() => {
          this.m.timedOut.inc();
          cancel(this.queueTimeoutError(ms));
        }, ms);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      const job = (): Promise<void> | undefined => {
        this.slowUnstarted--;
        if (state !== 0) {
          this.ghosts--;
          return undefined;
        }
        held++;
        this.slowHeld++;
        if (held < weight) return new Promise<void>((r) => holds.push(r));
        state = 1;
        cleanup();
        this.slowWaiting--;
        this.slowRunning++;
        this.m.wait.observe((performance.now() - t0) / 1000);
        const done = () => {
          this.slowRunning--;
          this.slowHeld--; // this job's own slot; freeHolds releases the others
          freeHolds();
        };
        return (async () => fn(signal))().then(
          (v) => {
            done();
            resolve(v);
          },
          (e) => {
            done();
            reject(e);
          },
        );
      };
      for (let i = 0; i < weight; i++) limit(job);
    });
  }

  private async runDistributed(
    fn: (signal?: AbortSignal) => unknown,
    weight: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const store = this.store as SemaphoreStore;
    const t0 = performance.now();
    const leaseId = randomUUID();
    await this.acquireDistributed(leaseId, weight, signal);
    this.m.wait.observe((performance.now() - t0) / 1000);
    this.activeCalls++;
    this.heldWeight += weight;
    this.m.active.set(this.heldWeight);
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let renewing = false;
    const renewTimer = setInterval(() => {
      if (renewing) return;
      renewing = true;
      store.renew(this.key, leaseId, this.leaseTtlMs).then(
        (alive) => {
          renewing = false;
          if (!alive && !ac.signal.aborted) {
            clearInterval(renewTimer);
            this.events.emit('leaseLost', { key: this.key, leaseId });
            ac.abort(
              new CancelledError(`lease on limiter ${JSON.stringify(this.key)} was lost`, {
                context: { key: this.key, leaseId },
              }),
            );
          }
        },
        (e) => {
          renewing = false;
          this.events.emit('error', e);
        },
      );
    }, this.renewMs);
    renewTimer.unref?.();
    try {
      return await fn(ac.signal);
    } finally {
      clearInterval(renewTimer);
      signal?.removeEventListener('abort', onAbort);
      this.activeCalls--;
      this.heldWeight -= weight;
      this.m.active.set(this.heldWeight);
      // Not awaited: the caller has its result one round trip sooner. Commands on one connection
      // (one node for the key's slot on a Cluster) run in order, so this process's next acquire,
      // inFlight() or close() still comes after the release. If it fails, the lease runs out by
      // itself within leaseTtl.
      store.release(this.key, leaseId).catch((e) => this.events.emit('error', e));
      this.kick();
    }
  }

  private acquireDistributed(
    leaseId: string,
    weight: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: LongTimer | undefined;
      const cleanup = () => {
        timer?.clear();
        signal?.removeEventListener('abort', onAbort);
      };
      const w: Waiter = {
        weight,
        leaseId,
        state: 0,
        resolve: () => {
          cleanup();
          this.waitingCalls--;
          this.waitingWeight -= weight;
          resolve();
        },
        reject: (e) => {
          cleanup();
          this.waitingCalls--;
          this.waitingWeight -= weight;
          reject(e);
        },
      };
      const cancel = (e: unknown) => {
        if (w.state !== 0) return;
        w.state = 2;
        w.reject(e);
        this.kick();
      };
      const onAbort = () => cancel(this.cancelledError(signal as AbortSignal));
      if (this.queueTimeoutMs !== undefined) {
        const ms = this.queueTimeoutMs;
        timer = setLongTimeout(() => {
          this.m.timedOut.inc();
          cancel(this.queueTimeoutError(ms));
        }, ms);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waitingCalls++;
      this.waitingWeight += weight;
      this.waiters.push(w);
      if (this.pumping) this.kick();
      else void this.pump();
    });
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  // One loop per limiter tries the head of the local FIFO against the store, so a process polls
  // the backend at most once per pollInterval however many callers wait. The store keeps a line
  // of waiting processes, so slots go round between processes instead of back to whoever freed
  // them.
  private async pump(): Promise<void> {
    this.pumping = true;
    const store = this.store as SemaphoreStore;
    let inLine = false;
    // Slots believed free after the last reply: that many waiters are tried at once (one script
    // each, pipelined on one connection), so a process with many callers is not held to one
    // acquire per round trip.
    let free = 1;
    try {
      for (;;) {
        if (this.waiters.length > 0 && this.waiters.some((w) => w.state !== 0)) {
          this.waiters = this.waiters.filter((w) => w.state === 0);
        }
        if (this.waiters.length === 0 || this.closed) {
          if (!inLine || this.closed) return;
          inLine = false;
          await store.leave(this.key, this.waiterId).catch((e) => this.events.emit('error', e));
          continue; // a caller may have arrived during the await
        }
        const batch = this.waiters.slice(0, Math.max(1, Math.min(free, MAX_BATCH)));
        const total = this.waiters.length;
        const results = await Promise.all(
          batch.map((w, i) =>
            store
              .acquire(this.key, w.leaseId, w.weight, this.concurrency, this.leaseTtlMs, {
                id: this.waiterId,
                more: i + 1 < total,
                staleMs: this.staleMs,
              })
              .then(
                (r) => ({ r, e: undefined }),
                (e: unknown) => ({ r: undefined, e }),
              ),
          ),
        );
        let granted = 0;
        let hint = this.pollMs;
        let used = 0;
        for (let i = 0; i < batch.length; i++) {
          const w = batch[i] as Waiter;
          const { r, e } = results[i] as { r: SemaphoreAcquireResult | undefined; e: unknown };
          if (!r) {
            if (w.state === 0) {
              w.state = 2;
              w.reject(e);
            }
            continue;
          }
          used = Math.max(used, r.used);
          if (r.acquired) {
            granted++;
            inLine = i + 1 < total;
            if (w.state === 0) {
              w.state = 1;
              w.resolve();
            } else {
              // Cancelled while the script ran: hand the slot straight back.
              store.release(this.key, w.leaseId).catch((err) => this.events.emit('error', err));
            }
          } else {
            inLine = true;
            if (r.retryHintMs >= 1) hint = Math.min(hint, r.retryHintMs);
          }
        }
        free = Math.max(0, this.concurrency - used);
        if (granted > 0 || results.some((x) => x.e !== undefined)) continue;
        // Jitter spreads the polls of many processes apart.
        const ms = hint * (0.5 + Math.random());
        await new Promise<void>((r) => {
          const t = setTimeout(() => {
            this.wake = undefined;
            r();
          }, ms);
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
        free = 1;
      }
    } finally {
      this.pumping = false;
    }
  }

  private queueTimeoutError(ms: number): QueueTimeoutError {
    return new QueueTimeoutError(
      `waited ${ms / 1000} s for a slot of limiter ${JSON.stringify(this.key)} (queueTimeout)`,
      { context: { key: this.key, queueTimeout: ms / 1000, concurrency: this.concurrency } },
    );
  }

  private cancelledError(signal: AbortSignal): CancelledError {
    return new CancelledError(`wait for limiter ${JSON.stringify(this.key)} was aborted`, {
      cause: signal.reason,
      context: { key: this.key },
    });
  }

  private closedError(): ClosedError {
    return new ClosedError(`limiter ${JSON.stringify(this.key)} is closed`, {
      context: { key: this.key },
    });
  }

  /**
   * Refuses new calls, fails waiting callers with {@link ClosedError}, and closes a Redis
   * connection it created. Running calls finish; their distributed leases are released if the
   * connection still allows, and run out within `leaseTtl` otherwise. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) {
      if (w.state === 0) {
        w.state = 2;
        w.reject(this.closedError());
      }
    }
    this.kick();
    this.plimit?.clearQueue();
    this.events.clear();
    await this.backend.close();
  }
}

/** Options of {@link limit}. */
export interface LimitOptions {
  /** Slots each call takes. @default 1 */
  weight?: number;
  /**
   * The limiter, when it is not the first argument: a {@link ConcurrencyLimiter}, or a function
   * of the instance returning one (`limiter: (self) => self.limiter`), for a limiter injected
   * into the object (a NestJS provider). `@limit({ limiter: (self) => self.limiter })`.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the instance type is the decorated class's
  limiter?: ConcurrencyLimiter | ((self: any) => ConcurrencyLimiter);
}

/** A limiter, or a function of the instance that returns one. */
// biome-ignore lint/suspicious/noExplicitAny: the instance type is the decorated class's
export type LimiterSource = ConcurrencyLimiter | ((self: any) => ConcurrencyLimiter);

/**
 * Runs every call of a method (decorator) or function through `limiter`.
 *
 * @example
 * const llm = new ConcurrencyLimiter({ concurrency: 10 });
 * class Agent {
 *   @limit(llm) async invoke(prompt: string) { ... }
 * }
 * const invoke = limit(llm, (prompt: string) => model.invoke(prompt));
 */
export function limit(limiter: LimiterSource, options?: LimitOptions): ResilienceDecorator;
export function limit(options: LimitOptions & { limiter: LimiterSource }): ResilienceDecorator;
export function limit<A extends unknown[], R>(
  limiter: ConcurrencyLimiter,
  fn: (...args: A) => R,
  options?: LimitOptions,
): (...args: A) => Promise<Awaited<R>>;
export function limit(first: unknown, second?: unknown, third?: unknown): unknown {
  let source: unknown = first;
  let rest: unknown[] = [second, third];
  if (
    typeof first === 'object' &&
    first !== null &&
    !(first instanceof ConcurrencyLimiter) &&
    'limiter' in first
  ) {
    // `@limit({ limiter, weight })`
    source = (first as LimitOptions).limiter;
    rest = [first];
  }
  const isFn = typeof source === 'function';
  if (!isFn && !(source instanceof ConcurrencyLimiter)) {
    throw new ValidationError(
      `limit expects a ConcurrencyLimiter or a function of the instance returning one, received ${describeValue(source)}`,
      { option: 'limiter' },
    );
  }
  const fn = !isFn && typeof rest[0] === 'function' ? (rest[0] as AnyMethod) : undefined;
  const { limiter: _l, ...o } = optionsObject<LimitOptions>(fn ? rest[1] : rest[0], 'options');
  const runOptions =
    o.weight === undefined
      ? undefined
      : { weight: assertNumber(o.weight, 'weight', { integer: true, min: 1 }) };
  const wrapWith =
    (limiter: ConcurrencyLimiter) =>
    (original: AnyMethod): AnyMethod =>
      function limited(this: unknown, ...args: unknown[]): Promise<unknown> {
        return limiter.run(() => original.apply(this, args), runOptions);
      };
  if (isFn) {
    const isLimiter = (v: unknown): v is ConcurrencyLimiter => v instanceof ConcurrencyLimiter;
    const resolve = source as (self: unknown) => unknown;
    return methodDecorator('limit', (original) =>
      perInstance(resolve, isLimiter, 'ConcurrencyLimiter', 'limiter', (l) =>
        wrapWith(l)(original),
      ),
    );
  }
  const wrap = wrapWith(source as ConcurrencyLimiter);
  if (fn) return wrap(fn);
  return methodDecorator('limit', (original) => wrap(original));
}
