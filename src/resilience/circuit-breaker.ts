import { randomUUID } from 'node:crypto';
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  CountBreaker,
  type IBreaker,
  IsolatedCircuitError,
  SamplingBreaker,
  circuitBreaker as cockatielBreaker,
  handleAll,
  handleWhen,
} from 'cockatiel';
import {
  type BackendOptions,
  type ResolvedBackend,
  hasMethods,
  resolveBackend,
} from '../core/backend.js';
import type { RedisConnectionOptions, RedisInput } from '../core/connection.js';
import { CircuitOpenError } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import {
  type CounterHandle,
  type GaugeHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import type { AnyMethod } from './decorate.js';
import { RedisBreakerStore } from './redis-store.js';
import type { BreakerStateStore, SharedBreakerView } from './store.js';
import { isTracingEnabled, withSpan } from '../core/trace.js';
import {
  BREAKER_STORE_METHODS,
  type CircuitBreakerKind,
  type CircuitEvents,
  type CircuitSettings,
  type CircuitSnapshot,
  type CircuitStateName,
  type Resolved,
  assertSharedName,
  resolveOptions,
} from './circuit-options.js';

/** Options of a circuit breaker ({@link circuit}, {@link circuitBreaker}, {@link CircuitBreaker}). */
export interface CircuitOptions<A extends unknown[] = unknown[], R = unknown>
  extends CircuitSettings<A, R>,
    BackendOptions<BreakerStateStore> {
  /**
   * Which rule opens the breaker: `consecutive` (the seed's `failure_threshold`: N failures in a
   * row), `rate` (a failure rate over a time window, with a minimum call volume) or `count` (a
   * failure rate over the last `windowSize` calls, with a minimum call volume).
   * For the decorator, also: a {@link CircuitBreaker} to use as is, or a function of the
   * instance returning one (`breaker: (self) => self.breaker`), for a breaker injected into
   * the object (a NestJS provider); the other breaker options are then ignored.
   * @default 'consecutive'
   */
  // biome-ignore lint/suspicious/noExplicitAny: the instance type is the decorated class's
  breaker?: CircuitBreakerKind | CircuitBreaker | ((self: any) => CircuitBreaker);
  /**
   * Share the open/half-open state across every instance using this Redis (URL, ioredis client,
   * or `{ nodes }` Cluster): when one instance opens the breaker the others see it open within
   * `syncInterval` seconds, and only one instance in the fleet runs the half-open trial.
   */
  redis?: RedisInput;
  /**
   * A shared state store (advanced: e.g. a {@link MemoryBreakerStore} shared in-process). Never
   * closed by the breaker; cannot be combined with `redis` (`backend` is an alias).
   */
  store?: BreakerStateStore;
  /** Redis key prefix for shared state. @default 'azs:breaker:' */
  prefix?: string;
  /**
   * Connection options (seconds) for a Redis this breaker creates; `redisOptions` and the
   * top-level `connectTimeout`/`commandTimeout` are accepted as aliases.
   * @default {}
   */
  connection?: RedisConnectionOptions;
  /** State from {@link CircuitBreaker.toJSON} to start from (e.g. across serverless invocations). */
  initialState?: CircuitSnapshot;
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
}

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** @internal What {@link CircuitBreaker.call} resolves when the breaker refuses a call. */
export const REJECTED = Symbol('rejected');

/**
 * A circuit breaker on cockatiel's `CircuitBreakerPolicy`, with azscale's options (seconds,
 * typed errors, disposable events) and optional fleet-wide state. Prefer {@link circuit}; use the
 * class to hold a breaker yourself.
 *
 * @example
 * const breaker = new CircuitBreaker({ name: 'search', failureThreshold: 5, recoveryTimeout: 60 });
 * const hits = await breaker.execute(() => search(q));
 */
export class CircuitBreaker {
  /** Registry name (or the function's name for a private breaker). */
  readonly name: string;

  private readonly o: Resolved;
  private readonly events = new Emitter<CircuitEvents>();
  private policy: CircuitBreakerPolicy;
  private readonly store: BreakerStateStore | undefined;
  private readonly backend: ResolvedBackend<BreakerStateStore | undefined>;
  private readonly owner = randomUUID();
  private sharedState: SharedBreakerView['state'] = 'closed';
  private sharedUntil = 0;
  private sharedGen = 0;
  private openedGen = -1;
  private trialInFlight = false;
  private lastTrialAttempt = 0;
  private syncTimer: NodeJS.Timeout | undefined;
  private syncing = false;
  private lastState: CircuitStateName = 'closed';
  private lastError: unknown;
  private closed = false;
  /** @internal Set by the registry that holds this breaker: removes it from there. */
  leaveRegistry: (() => void) | undefined;
  private readonly calls: {
    success: CounterHandle;
    failure: CounterHandle;
    rejected: CounterHandle;
  };
  private readonly openGauge: GaugeHandle;
  private readonly countCalls: boolean;

  constructor(options: CircuitOptions = {}) {
    this.o = resolveOptions(options, 'circuit');
    this.name = this.o.name;
    const metrics = options.metrics ?? noopMetrics;
    this.countCalls = metrics !== noopMetrics;
    const labels = { circuit: this.name };
    this.calls = {
      success: metrics.counter('resilience_circuit_calls_total', { ...labels, outcome: 'success' }),
      failure: metrics.counter('resilience_circuit_calls_total', { ...labels, outcome: 'failure' }),
      rejected: metrics.counter('resilience_circuit_calls_total', {
        ...labels,
        outcome: 'rejected',
      }),
    };
    this.openGauge = metrics.gauge('resilience_circuit_open', labels);
    this.policy = this.makePolicy(options.initialState?.local);
    this.lastState = this.state;
    // Embedded, the state is the local cockatiel breaker alone (no store).
    this.backend = resolveBackend(options, {
      module: 'CircuitBreaker',
      storeName: 'BreakerStateStore',
      prefix: 'azs:breaker:',
      memory: () => undefined,
      redis: (conn, { prefix }) => new RedisBreakerStore(conn, { prefix }),
      validateStore: (x): x is BreakerStateStore => hasMethods(x, BREAKER_STORE_METHODS),
    });
    if (this.backend.kind !== 'memory' && options.name === undefined) {
      void this.backend.close();
      assertSharedName(options, 'CircuitBreaker');
    }
    this.store = this.backend.store;
    if (this.store) {
      const shared = options.initialState?.shared;
      if (shared) this.applyView(shared);
      this.syncTimer = setInterval(() => void this.sync(), this.o.syncMs);
      this.syncTimer.unref?.();
      void this.sync();
    }
  }

  private makePolicy(initialState?: unknown): CircuitBreakerPolicy {
    const o = this.o;
    let breaker: IBreaker;
    if (o.kind === 'rate') {
      breaker = new SamplingBreaker({
        threshold: o.failureRate,
        duration: o.windowMs,
        minimumRps: o.minimumCalls / (o.windowMs / 1000),
      });
    } else if (o.kind === 'count') {
      breaker = new CountBreaker({
        threshold: o.failureRate,
        size: o.windowSize,
        minimumNumberOfCalls: Math.min(o.minimumCalls, o.windowSize),
      });
    } else {
      breaker = new ConsecutiveBreaker(o.failureThreshold);
    }
    const isFailure = o.isFailure;
    const policy = cockatielBreaker(isFailure ? handleWhen((e) => isFailure(e)) : handleAll, {
      halfOpenAfter: o.recoveryMs,
      breaker,
      ...(initialState ? { initialState } : {}),
    });
    policy.onBreak((reason) => {
      if (policy !== this.policy) return;
      if (!('isolated' in reason)) {
        this.lastError = 'error' in reason ? reason.error : undefined;
        if (this.store) this.publishOpen();
      }
      this.refresh();
    });
    // cockatiel fires onHalfOpen before its state reads HalfOpen; onStateChange comes after.
    policy.onStateChange(() => policy === this.policy && this.refresh());
    return policy;
  }

  /** The effective state: shared state first (when shared), then this process's breaker. */
  get state(): CircuitStateName {
    const local = STATE_NAMES[this.policy.state];
    if (local === 'isolated') return local;
    if (this.store) {
      if (this.sharedState === 'half-open') return 'half-open';
      if (this.sharedState === 'open') return 'open';
    }
    return local;
  }

  /** The error that last opened the breaker, if any. */
  get lastFailure(): unknown {
    return this.lastError;
  }

  /** True when this breaker shares its state through a store (Redis). */
  get isShared(): boolean {
    return this.store !== undefined;
  }

  /** Runs the listener when the breaker opens; returns a disposer. */
  onOpen(listener: CircuitEvents['open']): Disposer {
    return this.events.on('open', listener);
  }
  /** Runs the listener when the breaker lets a trial call through; returns a disposer. */
  onHalfOpen(listener: CircuitEvents['halfOpen']): Disposer {
    return this.events.on('halfOpen', listener);
  }
  /** Runs the listener when the breaker closes again; returns a disposer. */
  onClose(listener: CircuitEvents['close']): Disposer {
    return this.events.on('close', listener);
  }
  /** Runs the listener on every state change; returns a disposer. */
  onStateChange(listener: CircuitEvents['stateChange']): Disposer {
    return this.events.on('stateChange', listener);
  }
  /** Runs the listener when the shared-state backend fails; returns a disposer. */
  onError(listener: CircuitEvents['error']): Disposer {
    return this.events.on('error', listener);
  }

  /**
   * Runs `fn` through the breaker. Rejects with {@link CircuitOpenError} when the breaker is open
   * (no fallback here: {@link circuit} adds it).
   */
  async execute<T>(fn: () => T | Promise<T>): Promise<T> {
    // Closed, private and untraced: cockatiel cannot refuse the call, so it goes straight there.
    const policy = this.fast();
    if (policy) return policy.execute(fn);
    const r = await this.call(fn as AnyMethod, undefined, []);
    if (r === REJECTED) throw this.openError();
    return r as T;
  }

  /**
   * @internal The cockatiel policy when a call can go straight to it: closed, not shared, no
   * metrics to count. Then cockatiel cannot refuse the call and nothing needs wrapping.
   */
  fast(): CircuitBreakerPolicy | undefined {
    return this.store ||
      this.countCalls ||
      this.policy.state !== CircuitState.Closed ||
      isTracingEnabled()
      ? undefined
      : this.policy;
  }

  /** @internal Runs `fn.apply(self, args)`; resolves {@link REJECTED} when the breaker refuses. */
  call(fn: AnyMethod, self: unknown, args: unknown[]): Promise<unknown> {
    // Attributes are built only when tracing is on: the hot path allocates nothing for them.
    return withSpan(
      'azscale.circuit.call',
      isTracingEnabled()
        ? { 'azscale.circuit': this.name, 'azscale.circuit.state': this.state }
        : undefined,
      async (): Promise<unknown> => {
        if (this.store && this.sharedState !== 'closed') {
          if (this.policy.state === CircuitState.Isolated) return this.reject();
          if (this.sharedState === 'open' && Date.now() < this.sharedUntil) return this.reject();
          if (
            this.trialInFlight ||
            Date.now() - this.lastTrialAttempt < Math.min(this.o.syncMs, 1000)
          ) {
            return this.reject();
          }
          return this.sharedTrial(fn, self, args);
        }
        let ran = false;
        try {
          const value = await this.policy.execute(() => {
            ran = true;
            return fn.apply(self, args);
          });
          this.calls.success.inc();
          return value;
        } catch (e) {
          if (!ran && (e instanceof BrokenCircuitError || e instanceof IsolatedCircuitError)) {
            return this.reject();
          }
          if (!this.o.isFailure || this.o.isFailure(e)) this.calls.failure.inc();
          throw e;
        }
      },
    );
  }

  private reject(): typeof REJECTED {
    this.calls.rejected.inc();
    return REJECTED;
  }

  /** @internal */
  openError(): CircuitOpenError {
    const state = this.state;
    return new CircuitOpenError(`circuit ${JSON.stringify(this.name)} is ${state}`, {
      cause: this.lastError,
      context: {
        circuit: this.name,
        state,
        ...(this.store && this.sharedState === 'open'
          ? { retryAfter: Math.max(0, (this.sharedUntil - Date.now()) / 1000) }
          : {}),
      },
    });
  }

  // The single fleet-wide half-open trial: claimed in the store, run outside the local policy
  // (which may still be open on this instance), settled in the store.
  private async sharedTrial(fn: AnyMethod, self: unknown, args: unknown[]): Promise<unknown> {
    const store = this.store as BreakerStateStore;
    this.trialInFlight = true;
    this.lastTrialAttempt = Date.now();
    try {
      let granted: boolean;
      try {
        const r = await store.tryTrial(this.name, this.owner, this.o.trialMs);
        granted = r.granted;
        this.applyView(r.view);
      } catch (e) {
        this.events.emit('error', e);
        return this.reject();
      }
      if (!granted) return this.reject();
      let failed = false;
      try {
        const value = await fn.apply(self, args);
        this.calls.success.inc();
        return value;
      } catch (e) {
        failed = !this.o.isFailure || this.o.isFailure(e);
        if (failed) {
          this.calls.failure.inc();
          this.lastError = e;
        }
        throw e;
      } finally {
        try {
          const view = await store.settleTrial(this.name, this.owner, !failed, this.o.recoveryMs);
          if (!failed) this.resetLocal();
          this.applyView(view);
        } catch (e) {
          this.events.emit('error', e);
        }
      }
    } finally {
      this.trialInFlight = false;
    }
  }

  private publishOpen(): void {
    const store = this.store as BreakerStateStore;
    // Seen open here at once; the store decides whether this is a new open (its generation).
    if (this.sharedState === 'closed') {
      this.sharedState = 'open';
      this.sharedUntil = Date.now() + this.o.recoveryMs;
    }
    store.open(this.name, this.o.recoveryMs).then(
      (view) => {
        this.openedGen = view.generation;
        this.applyView(view);
      },
      (e) => this.events.emit('error', e),
    );
  }

  /** Reads the shared state now (it is also read every `syncInterval` seconds). */
  async sync(): Promise<void> {
    if (!this.store || this.syncing || this.closed) return;
    this.syncing = true;
    try {
      this.applyView(await this.store.read(this.name));
    } catch (e) {
      this.events.emit('error', e);
    } finally {
      this.syncing = false;
    }
  }

  private applyView(view: SharedBreakerView): void {
    if (view.generation < this.sharedGen) return; // an older reply overtaken by a newer one
    this.sharedGen = view.generation;
    this.sharedState = view.state;
    this.sharedUntil = Date.now() + view.remainingMs;
    // The fleet closed the breaker after this instance opened it (another instance's trial
    // succeeded, or reset()): close here too instead of waiting out the local timer.
    if (
      view.state === 'closed' &&
      this.openedGen >= 0 &&
      view.generation > this.openedGen &&
      this.policy.state === CircuitState.Open
    ) {
      this.resetLocal();
    }
    this.refresh();
  }

  private resetLocal(): void {
    if (this.policy.state === CircuitState.Closed || this.policy.state === CircuitState.Isolated)
      return;
    this.policy = this.makePolicy();
    this.openedGen = -1;
  }

  // Emits events when the effective state changed.
  private refresh(): void {
    const state = this.state;
    const previous = this.lastState;
    if (state === previous) return;
    this.lastState = state;
    this.openGauge.set(state === 'closed' ? 0 : 1);
    const name = this.name;
    if (state === 'open' || (state === 'isolated' && previous !== 'open')) {
      this.events.emit('open', { name, error: this.lastError });
    } else if (state === 'half-open') {
      this.events.emit('halfOpen', { name });
    } else if (state === 'closed') {
      this.events.emit('close', { name });
    }
    this.events.emit('stateChange', { name, state, previous });
  }

  /** Holds the breaker open (in this process) until the returned disposer is called. */
  isolate(): Disposer {
    const handle = this.policy.isolate();
    this.refresh();
    const dispose = () => {
      handle.dispose();
      this.refresh();
    };
    return Object.assign(dispose, { dispose });
  }

  /** Closes the breaker here and, when shared, for every instance. */
  async reset(): Promise<void> {
    if (this.policy.state !== CircuitState.Isolated) {
      this.policy = this.makePolicy();
      this.openedGen = -1;
    }
    if (this.store) {
      await this.store.reset(this.name);
      await this.sync();
    }
    this.refresh();
  }

  /** Same as {@link toJSON}. */
  exportState(): CircuitSnapshot {
    return this.toJSON();
  }

  /** Exports the state (JSON-safe); pass it back as `initialState` to restore it. */
  toJSON(): CircuitSnapshot {
    return {
      name: this.name,
      state: this.state,
      ...(this.store
        ? {
            shared: {
              state: this.sharedState,
              remainingMs: Math.max(0, this.sharedUntil - Date.now()),
              generation: this.sharedGen,
            },
          }
        : {}),
      local: this.policy.toJSON(),
    };
  }

  /** Stops syncing, closes a Redis connection it created and leaves the registry. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.events.clear();
    this.leaveRegistry?.();
    this.leaveRegistry = undefined;
    await this.backend.close();
  }
}
