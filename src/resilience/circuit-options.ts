import { ValidationError } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { assertFunction, assertNumber, assertOneOf } from '../core/validate.js';
import type { AnyMethod } from './decorate.js';
import { optionsObject, positiveInt, seconds } from './options.js';
import type { SharedBreakerView } from './store.js';

// The rules of a circuit breaker (its options without the backend), and how they are checked.

/** The state of a breaker. `isolated` means held open by hand with {@link CircuitBreaker.isolate}. */
export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/** Which rule opens the breaker. */
export type CircuitBreakerKind = 'consecutive' | 'rate' | 'count';

/**
 * A breaker's rules: which failures open it, for how long, and how a shared one syncs. Part of
 * `CircuitOptions`.
 */
export interface CircuitSettings<A extends unknown[] = unknown[], R = unknown> {
  /**
   * Registry name. Breakers are kept by name: every `circuit(...)` with the same name shares one
   * breaker (options of the first one win). A decorator defaults to `ClassName.methodName`; the
   * function form without a name gets a private, unregistered breaker. Required (a
   * `ValidationError` without it) when the state is shared through `redis` or `store`: the name
   * is the shared key, and a derived one (a function's name, `anonymous`) would join breakers
   * that have nothing to do with each other.
   */
  name?: string;
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
  /** Seconds between reads of the shared state (at most 3600). @default 0.5 */
  syncInterval?: number;
  /**
   * Seconds one instance may hold the fleet's half-open trial; if it dies mid-trial, another
   * instance takes the trial over after this. @default 30
   */
  trialTimeout?: number;
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

export const KINDS: readonly CircuitBreakerKind[] = ['consecutive', 'rate', 'count'];
export const BREAKER_STORE_METHODS = ['read', 'open', 'tryTrial', 'settleTrial', 'reset', 'close'];

/** The longest `syncInterval` (seconds): a shared breaker read less often than hourly is not shared. */
export const MAX_SYNC_INTERVAL = 3600;

/**
 * The most breakers the registry holds at once. Names are often built from user data (a tenant,
 * a host); past this, {@link circuitBreaker} throws `LimitExceededError` instead of growing
 * forever. Close breakers you no longer use.
 */
export const MAX_REGISTERED_BREAKERS = 10_000;

// A shared breaker's name is its key in the store, so it must be chosen, never derived.
export function assertSharedName(
  o: { name?: unknown; redis?: unknown; store?: unknown; backend?: unknown },
  where: string,
): void {
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

/** Checked settings, in milliseconds. */
export interface Resolved {
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

/** Checks the settings of `raw` (a `ValidationError` naming the option). */
export function resolveOptions(raw: unknown, defaultName: string): Resolved {
  const o = optionsObject<CircuitSettings & { breaker?: unknown }>(raw, 'options');
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
