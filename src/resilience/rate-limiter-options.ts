import type { BackendOptions } from '../core/backend.js';
import type { RedisConnectionOptions, RedisInput } from '../core/connection.js';
import type { MetricsSink } from '../core/metrics.js';
import type { RateMode, RateStore } from './store.js';

// The options, results and events of a RateLimiter.

/** Options of {@link RateLimiter}. At least one of `requestsPerMinute` / `tokensPerMinute`. */
export interface RateLimiterOptions extends BackendOptions<RateStore> {
  /**
   * A Redis URL, ioredis client or `{ nodes }` Cluster: the budgets and `penalize` then hold for
   * every process sharing `key`. Without it the budgets are per process.
   * @default per process (memory)
   */
  redis?: RedisInput;
  /** Names the budget, e.g. `"openai:gpt-4o"`. @default 'default' */
  key?: string;
  /** Redis key prefix. @default 'azs:rate:' */
  prefix?: string;
  /** Requests allowed per minute (a provider's RPM). @default no request budget */
  requestsPerMinute?: number;
  /** Tokens allowed per minute (a provider's TPM). @default no token budget */
  tokensPerMinute?: number;
  /**
   * How the budgets are counted.
   * - `'gcra'`: a token bucket. A window's budget may go at once (a burst), then it refills at
   *   the steady rate, so a 60 s window that starts with a full bucket can admit up to twice the
   *   per-minute budget.
   * - `'sliding-window'`: in any `window` seconds at most the window's share of the budgets
   *   (`requestsPerMinute × window / 60`, same for tokens) is granted, on the store's clock and
   *   for every process sharing `key`. Literal per-minute limits, as providers count them; the
   *   LLM pipeline's default. Corrections with {@link RateLimiter.adjust} that charge more than
   *   was estimated can exceed it by what they charge.
   * @default 'gcra'
   */
  mode?: RateMode;
  /**
   * The period, in seconds, the budgets are counted over: the GCRA's burst, or the sliding
   * window. The per-minute budgets are prorated to it (`tokensPerMinute × window / 60` per
   * window); shorten it for tests, or lengthen it for hourly-style budgets. 1 s to 1 day.
   * @default 60
   */
  window?: number;
  /**
   * Longest wait, in seconds, `acquire` accepts; when the budget frees later than that it throws
   * {@link LimitExceededError} with `retryAfter` at once instead (so a request handler can answer
   * 429/503 rather than hang). `0` never waits; raise it for batch workers (at most 10 years).
   * @default 5
   */
  maxWait?: number;
  /**
   * Longest pause, in seconds, that {@link RateLimiter.penalize} applies: a longer
   * `retryAfterSeconds` (a provider's `Retry-After`, a reset time sent in milliseconds by
   * mistake) is cut to it, so one bad header cannot stop the fleet for days. At most 10 years;
   * `0` turns `penalize` off.
   * @default 300
   */
  maxPenalty?: number;
  /**
   * A rate store (advanced; e.g. a {@link MemoryRateStore} shared in-process). Never closed by us; cannot be combined with `redis` (`backend` is an alias).
   * @default made from `redis`
   */
  store?: RateStore;
  /**
   * Connection options (seconds) for a Redis this limiter creates; `redisOptions` and the
   * top-level `connectTimeout`/`commandTimeout` are accepted as aliases.
   * @default {}
   */
  connection?: RedisConnectionOptions;
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Options of {@link RateLimiter.acquire}. */
export interface RateAcquireOptions {
  /** Tokens this call will spend (estimate: prompt + max completion). @default 0 */
  tokens?: number;
  /** Overrides the limiter's `maxWait` (seconds) for this call. @default the limiter's `maxWait` */
  maxWait?: number;
  /** Aborts the wait with {@link CancelledError}. @default none */
  signal?: AbortSignal;
}

/**
 * One granted call: hand it to {@link RateLimiter.settle} (or `adjust`/`refund`) with the tokens
 * the call really used.
 */
export interface RateGrant {
  /** Identifies the grant; a correction of it is applied at most once. */
  readonly id: string;
  /** Tokens the grant spent (the estimate). */
  readonly tokens: number;
  /** When it was granted: milliseconds since the epoch on the store's clock (Redis `TIME`). */
  readonly at: number | undefined;
}

/** What {@link RateLimiter.acquire} resolves to. */
export interface RateAcquireResult {
  /** Seconds the call waited for budget. */
  waited: number;
  /** The grant, for correcting its tokens once the real usage is known. */
  grant: RateGrant;
}

/** What {@link RateLimiter.tryAcquire} resolves to. */
export interface RateTryResult {
  /** True when the budget was spent and the call may go. */
  allowed: boolean;
  /** When refused: seconds until it would fit. */
  retryAfter: number;
  /** When allowed: the grant, for correcting its tokens. */
  grant?: RateGrant;
}

/** Options of {@link RateLimiter.adjust} and {@link RateLimiter.refund}. */
export interface RateAdjustOptions {
  /**
   * The grant being corrected: the correction is applied at most once per grant (a second call
   * for the same grant is ignored), and a sliding window's refund goes back to the slot the
   * grant was counted in. Without it every call is a separate correction, counted now.
   * @default none
   */
  grant?: RateGrant;
}

/** What {@link RateLimiter.budget} resolves to: the budget left now, without spending any. */
export interface RateBudget {
  /** Requests that may go now (the burst left); `null` without a request budget. */
  requestsLeft: number | null;
  /** Tokens that may be spent now; `null` without a token budget. */
  tokensLeft: number | null;
  /** Seconds the key stays paused by {@link RateLimiter.penalize} (0 when not paused). */
  pausedFor: number;
}

/** Events of a {@link RateLimiter}. */
export type RateLimiterEvents = {
  /** `penalize` could not reach the backend (the pause still holds in this process). */
  error: (error: unknown) => void;
};
