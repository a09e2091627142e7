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
import {
  CircuitOpenError,
  LimitExceededError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId } from '../core/keys.js';
import {
  type CounterHandle,
  type GaugeHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import { assertFunction, assertNumber, assertOneOf } from '../core/validate.js';
import {
  type AnyMethod,
  type ResilienceDecorator,
  classNameOf,
  methodDecorator,
  perInstance,
} from './decorate.js';
import { optionsObject, positiveInt, seconds } from './options.js';
import { RedisBreakerStore } from './redis-store.js';
import type { BreakerStateStore, SharedBreakerView } from './store.js';
import { isTracingEnabled, withSpan } from '../core/trace.js';

/** The state of a breaker. `isolated` means held open by hand with {@link CircuitBreaker.isolate}. */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/** Which rule opens the breaker. */
export type CircuitBreakerKind = 'consecutive' | 'rate' | 'count';

/** Options of a circuit breaker ({@link circuit}, {@link circuitBreaker}, {@link CircuitBreaker}). */
export interface CircuitOptions<A extends unknown[] = unknown[], R = unknown>
  extends BackendOptions<BreakerStateStore> {
  /**
   * Registry name. Breakers are kept by name: every `circuit(...)` with the same name shares one
   * breaker (options of the first one win). A decorator defaults to `ClassName.methodName`; the
   * function form without a name gets a private, unregistered breaker. Required (a
   * `ValidationError` without it) when the state is shared through `redis` or `store`: the name
   * is the shared key, and a derived one (a function's name, `anonymous`) would join breakers
   * that have nothing to do with each other.
   */
  name?: string;
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
  /** Consecutive failures that open the breaker (`consecutive` only). @default 5 */
  failureThreshold?: number;
  /** Seconds the breaker stays open before one half-open trial call is let through. @default 60 */
  recoveryTimeout?: number;
  /** A `rate` or `count` breaker opens when more than this share of calls failed (0 < rate < 1). @default 0.5 */
  failureRate?: number;
  /** Seconds of history a `rate` breaker samples. @default 60 */
  window?: number;
  /** Calls in the window (`rate`) or sample (`count`) before the rate can open the breaker. @default 10 */
  minimumCalls?: number;
  /** Calls sampled by a `count` breaker. @default 100 */
  windowSize?: number;
  /**
   * Called with the call's arguments (and `this`) instead of throwing {@link CircuitOpenError}
   * when the breaker rejects a call (open, isolated, or a half-open trial is running elsewhere).
   * Failures of calls that ran are rethrown as they are.
   */
  fallback?: (...args: A) => R | Promise<R>;
  /**
   * Which errors count as failures. Errors for which it returns false pass through to the
   * caller without counting (e.g. a 400 from a healthy service). @default every error
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * Share the open/half-open state across every instance using this Redis (URL, ioredis client,
   * or `{ nodes }` Cluster): when one instance opens the breaker the others see it open within
   * `syncInterval` seconds, and only one instance in the fleet runs the half-open trial.
   */
  redis?: RedisInput;
  /** A shared state store (advanced: e.g. a {@link MemoryBreakerStore} shared in-process). Never closed by us; cannot be combined with `redis` (`backend` is an alias). */
  store?: BreakerStateStore;
  /** Redis key prefix for shared state. @default 'azs:breaker:' */
  prefix?: string;
  /** Seconds between reads of the shared state (at most 3600). @default 0.5 */
  syncInterval?: number;
  /**
   * Seconds one instance may hold the fleet's half-open trial; if it dies mid-trial, another
   * instance takes the trial over after this. @default 30
   */
  trialTimeout?: number;
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

/** Exported breaker state (JSON-safe), from {@link CircuitBreaker.toJSON}. */
export interface CircuitSnapshot {
  /** Breaker name. */
  name: string;
  /** Effective state. */
  state: CircuitStateName;
  /** Shared state as last read, when the breaker shares state. */
  shared?: SharedBreakerView;
  /** The local cockatiel breaker's own state (opaque; pass back through `initialState`). */
  local: unknown;
}

/** Events of a {@link CircuitBreaker}. */
export type CircuitEvents = {
  /** The breaker opened (or was isolated): calls fail fast. `error` is the last failure, if any. */
  open: (info: { name: string; error?: unknown }) => void;
  /** The breaker is half-open: a trial call is let through. */
  halfOpen: (info: { name: string }) => void;
  /** The breaker closed: calls flow normally again. */
  close: (info: { name: string }) => void;
  /** Any state change, with the new and the previous state. */
  stateChange: (info: {
    name: string;
    state: CircuitStateName;
    previous: CircuitStateName;
  }) => void;
  /** The shared-state backend failed; the breaker carries on with its local state. */
  error: (error: unknown) => void;
};

const KINDS: readonly CircuitBreakerKind[] = ['consecutive', 'rate', 'count'];
const BREAKER_STORE_METHODS = ['read', 'open', 'tryTrial', 'settleTrial', 'reset', 'close'];

/** The longest `syncInterval` (seconds): a shared breaker read less often than hourly is not shared. */
const MAX_SYNC_INTERVAL = 3600;

/**
 * The most breakers the registry holds at once. Names are often built from user data (a tenant,
 * a host); past this, {@link circuitBreaker} throws `LimitExceededError` instead of growing
 * forever. Close breakers you no longer use.
 */
export const MAX_REGISTERED_BREAKERS = 10_000;

// A shared breaker's name is its key in the store, so it must be chosen, never derived.
function assertSharedName(o: Partial<CircuitOptions>, where: string): void {
  if (
    o.name === undefined &&
    ((o.redis !== undefined && o.redis !== null) ||
      o.store !== undefined ||
      o.backend !== undefined)
  ) {
    throw new ValidationError(
      `${where}: a shared breaker (redis or store) needs an explicit name; unnamed breakers are private to their wrapper`,
      { option: 'name' },
    );
  }
}

interface Resolved {
  name: string;
  kind: CircuitBreakerKind;
  failureThreshold: number;
  recoveryMs: number;
  failureRate: number;
  windowMs: number;
  minimumCalls: number;
  windowSize: number;
  isFailure: ((error: unknown) => boolean) | undefined;
  fallback: AnyMethod | undefined;
  syncMs: number;
  trialMs: number;
}

function resolveOptions(raw: unknown, defaultName: string): Resolved {
  const o = optionsObject<CircuitOptions>(raw, 'options');
  const kind = o.breaker === undefined ? 'consecutive' : assertOneOf(o.breaker, 'breaker', KINDS);
  const failureRate =
    o.failureRate === undefined
      ? 0.5
      : assertNumber(o.failureRate, 'failureRate', { positive: true });
  if (failureRate >= 1) {
    throw new ValidationError(`failureRate must be > 0 and < 1, received number ${failureRate}`, {
      option: 'failureRate',
    });
  }
  return {
    name: o.name === undefined ? defaultName : validateId(o.name, 'name'),
    kind,
    failureThreshold: positiveInt(o.failureThreshold, 'failureThreshold', 5),
    recoveryMs: seconds(o.recoveryTimeout, 'recoveryTimeout', 60) * 1000,
    failureRate,
    windowMs: seconds(o.window, 'window', 60) * 1000,
    minimumCalls: positiveInt(o.minimumCalls, 'minimumCalls', 10),
    windowSize: positiveInt(o.windowSize, 'windowSize', 100),
    isFailure:
      o.isFailure === undefined
        ? undefined
        : assertFunction<(e: unknown) => boolean>(o.isFailure, 'isFailure'),
    fallback:
      o.fallback === undefined ? undefined : assertFunction<AnyMethod>(o.fallback, 'fallback'),
    syncMs: seconds(o.syncInterval, 'syncInterval', 0.5, MAX_SYNC_INTERVAL) * 1000,
    trialMs: seconds(o.trialTimeout, 'trialTimeout', 30) * 1000,
  };
}

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

const REJECTED = Symbol('rejected');

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
    if (!isTracingEnabled()) return this.callUntraced(fn, self, args);
    return withSpan(
      'azscale.circuit.call',
      { 'azscale.circuit': this.name, 'azscale.circuit.state': this.state },
      () => this.callUntraced(fn, self, args),
    );
  }

  private async callUntraced(fn: AnyMethod, self: unknown, args: unknown[]): Promise<unknown> {
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
    if (registry.get(this.name) === this) registry.delete(this.name);
    await this.backend.close();
  }
}

// The registry: one breaker per name for the life of the process, so decorating a method (or
// wrapping a function in a hot path) never creates a breaker per call or per instance.
const registry = new Map<string, CircuitBreaker>();

/**
 * The breaker registered under `options.name`, created with `options` on first use. Later calls
 * with the same name return the same breaker and ignore their options.
 */
export function circuitBreaker(options: CircuitOptions & { name: string }): CircuitBreaker {
  const o = optionsObject<CircuitOptions>(options, 'options');
  const name = validateId(o.name, 'name');
  const existing = registry.get(name);
  if (existing) return existing;
  if (registry.size >= MAX_REGISTERED_BREAKERS) {
    throw new LimitExceededError(
      `the circuit breaker registry holds ${registry.size} breakers (MAX_REGISTERED_BREAKERS); close some before registering ${JSON.stringify(name.slice(0, 80))}`,
      { context: { max: MAX_REGISTERED_BREAKERS } },
    );
  }
  const created = new CircuitBreaker(options);
  registry.set(name, created);
  return created;
}

/** The breaker registered under `name`, if any. */
export function getCircuitBreaker(name: string): CircuitBreaker | undefined {
  return registry.get(name);
}

/** Every registered breaker. */
export function listCircuitBreakers(): CircuitBreaker[] {
  return [...registry.values()];
}

/** The exported state of every registered breaker, by name. */
export function exportCircuitStates(): Record<string, CircuitSnapshot> {
  // fromEntries defines own properties: a breaker named `__proto__` is an entry, not a prototype.
  return Object.fromEntries([...registry].map(([name, b]) => [name, b.toJSON()]));
}

/** Closes every registered breaker (their Redis connections, sync timers) and empties the registry. */
export async function closeCircuitBreakers(): Promise<void> {
  await Promise.all([...registry.values()].map((b) => b.close()));
  registry.clear();
}

/**
 * A function guarded by a breaker: same arguments, always async, with its breaker attached and
 * the breaker's state and events also readable on the function itself.
 */
export type CircuitGuarded<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) & {
  /** The breaker guarding this function. */
  readonly breaker: CircuitBreaker;
  /** The breaker's state (see {@link CircuitBreaker.state}). */
  readonly state: CircuitStateName;
  /** See {@link CircuitBreaker.onOpen}. */
  onOpen(listener: CircuitEvents['open']): Disposer;
  /** See {@link CircuitBreaker.onHalfOpen}. */
  onHalfOpen(listener: CircuitEvents['halfOpen']): Disposer;
  /** See {@link CircuitBreaker.onClose}. */
  onClose(listener: CircuitEvents['close']): Disposer;
  /** See {@link CircuitBreaker.exportState}. */
  exportState(): CircuitSnapshot;
};

function guard(breaker: CircuitBreaker, fn: AnyMethod, fallback: AnyMethod | undefined): AnyMethod {
  const slow = async (self: unknown, args: unknown[]): Promise<unknown> => {
    const r = await breaker.call(fn, self, args);
    if (r !== REJECTED) return r;
    if (fallback) return fallback.apply(self, args);
    throw breaker.openError();
  };
  // Not async itself: on the hot path (closed breaker) the caller gets cockatiel's own promise.
  // A call without arguments or `this` (the common `guarded()`) needs no closure per call.
  const bare = () => fn();
  return function guarded(this: unknown, ...args: unknown[]): Promise<unknown> {
    const policy = breaker.fast();
    if (policy) {
      return policy.execute(
        args.length === 0 && this === undefined ? bare : () => fn.apply(this, args),
      );
    }
    return slow(this, args);
  };
}

/**
 * Guards a function with a circuit breaker, or (called with options only) decorates a method.
 * Built on cockatiel: a consecutive-failure breaker by default (`failureThreshold` failures in a
 * row open it), half-open after `recoveryTimeout` seconds, closed again by one successful trial.
 * While open, calls reject with {@link CircuitOpenError} or go to `fallback`.
 *
 * @example
 * class Client {
 *   @circuit({ failureThreshold: 5, recoveryTimeout: 60 })
 *   async callExternalService() { ... }
 * }
 * const guarded = circuit(fetchQuote, { name: 'quotes', failureThreshold: 5, recoveryTimeout: 60 });
 * guarded.breaker.onOpen(() => alert('quotes down'));
 */
export function circuit<A extends unknown[], R, F = Awaited<R>>(
  fn: (...args: A) => R,
  options?: CircuitOptions<A, F>,
): CircuitGuarded<A, R | F>;
export function circuit(options?: CircuitOptions): ResilienceDecorator;
export function circuit(...args: unknown[]): unknown {
  const [first, second] = args;
  if (typeof first === 'function' && !(args.length >= 2 && isDecoratorContext(second))) {
    const o = optionsObject<CircuitOptions>(second, 'options');
    const shared =
      (o.redis !== undefined && o.redis !== null) ||
      o.store !== undefined ||
      o.backend !== undefined;
    const breaker =
      o.name === undefined
        ? // A shared one without a name is refused by the constructor (after its other checks).
          new CircuitBreaker(shared ? o : { ...o, name: validName(first.name) })
        : circuitBreaker({ ...o, name: o.name });
    const guarded = guard(breaker, first as AnyMethod, resolveOptions(o, breaker.name).fallback);
    Object.defineProperties(guarded, {
      breaker: { value: breaker, enumerable: true },
      state: { get: () => breaker.state, enumerable: true },
      onOpen: { value: (l: CircuitEvents['open']) => breaker.onOpen(l) },
      onHalfOpen: { value: (l: CircuitEvents['halfOpen']) => breaker.onHalfOpen(l) },
      onClose: { value: (l: CircuitEvents['close']) => breaker.onClose(l) },
      exportState: { value: () => breaker.toJSON() },
    });
    Object.defineProperty(guarded, 'name', { value: first.name, configurable: true });
    return guarded;
  }
  // Bare `@circuit` (no parentheses): the decorator arguments arrive here directly.
  if (args.length >= 2 && (isDecoratorContext(second) || args.length === 3)) {
    return (circuitDecorator(undefined) as (...a: unknown[]) => unknown)(...args);
  }
  if (
    first !== undefined &&
    (typeof first !== 'object' || first === null || Array.isArray(first))
  ) {
    throw new ValidationError(
      `circuit expects a function (and options) or an options object, received ${describeValue(first)}`,
      { option: 'fn' },
    );
  }
  return circuitDecorator(first as CircuitOptions | undefined);
}

function isDecoratorContext(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'kind' in v && 'name' in v;
}

function validName(n: string): string {
  try {
    return validateId(n, 'name', 200);
  } catch {
    return 'anonymous';
  }
}

function circuitDecorator(options: CircuitOptions | undefined): ResilienceDecorator {
  // Validate now, so a bad option fails at class definition rather than at the first call.
  const o = optionsObject<CircuitOptions>(options, 'options');
  const given = o.breaker;
  if (typeof given === 'function' || given instanceof CircuitBreaker) {
    const { breaker: _b, ...rest } = o;
    const fallback = resolveOptions(rest, 'circuit').fallback;
    const isBreaker = (v: unknown): v is CircuitBreaker => v instanceof CircuitBreaker;
    return methodDecorator('circuit', (original) =>
      perInstance(
        typeof given === 'function' ? (given as (self: unknown) => unknown) : () => given,
        isBreaker,
        'CircuitBreaker',
        'breaker',
        (b) => guard(b, original, fallback),
      ),
    );
  }
  resolveOptions(o, 'circuit');
  assertSharedName(o, '@circuit');
  return methodDecorator('circuit', (original, info) => {
    let guarded: AnyMethod | undefined;
    // Built on the first call (so `redis` connects only when used), once per decorated method.
    const build = (self: unknown): AnyMethod => {
      let name = o.name;
      if (name === undefined) {
        // The default name belongs to this method definition: another class that happens to
        // have the same name (two `Client` classes in one process) gets `Client.method#2`
        // rather than sharing its breaker. An explicit `name` shares on purpose.
        const base = `${info.className ?? classNameOf(self) ?? 'anonymous'}.${info.methodName}`;
        name = base;
        for (let i = 2; registry.has(name); i++) name = `${base}#${i}`;
      }
      const breaker = circuitBreaker({ ...o, name });
      return guard(breaker, original, resolveOptions(o, name).fallback);
    };
    return function circuitGuarded(this: unknown, ...args: unknown[]): Promise<unknown> {
      guarded ??= build(this);
      return guarded.apply(this, args);
    };
  });
}
