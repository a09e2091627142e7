import { type RedisConnectionOptions, type RedisInput, resolveRedis } from '../core/connection.js';
import {
  CancelledError,
  ClosedError,
  LimitExceededError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId, validatePrefix } from '../core/keys.js';
import {
  type CounterHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
} from '../core/metrics.js';
import { MAX_DURATION_SECONDS, assertDuration } from '../core/timers.js';
import { assertNumber } from '../core/validate.js';
import { MemoryRateStore } from './memory-store.js';
import { assertSignal, optionsObject, sleep } from './options.js';
import { RedisRateStore } from './redis-store.js';
import type { RateCost, RateStore } from './store.js';

/** The default `maxPenalty`, seconds. */
const DEFAULT_MAX_PENALTY = 300;
// The longest retry hint (ms) a store may give: a pause is at most 10 years.
const MAX_WAIT_HINT_MS = MAX_DURATION_SECONDS * 1000;

/** Options of {@link RateLimiter}. At least one of `requestsPerMinute` / `tokensPerMinute`. */
export interface RateLimiterOptions {
  /**
   * A Redis URL, ioredis client or `{ nodes }` Cluster: the budgets and `penalize` then hold for
   * every process sharing `key`. Without it the budgets are per process.
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
  /** A rate store (advanced; e.g. a {@link MemoryRateStore} shared in-process). Overrides `redis`. */
  store?: RateStore;
  /** Connection options for a Redis this limiter creates. */
  connection?: RedisConnectionOptions;
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Options of {@link RateLimiter.acquire}. */
export interface RateAcquireOptions {
  /** Tokens this call will spend (estimate: prompt + max completion). @default 0 */
  tokens?: number;
  /** Overrides the limiter's `maxWait` (seconds) for this call. */
  maxWait?: number;
  /** Aborts the wait with {@link CancelledError}. */
  signal?: AbortSignal;
}

/** What {@link RateLimiter.acquire} resolves to. */
export interface RateAcquireResult {
  /** Seconds the call waited for budget. */
  waited: number;
}

/** What {@link RateLimiter.tryAcquire} resolves to. */
export interface RateTryResult {
  /** True when the budget was spent and the call may go. */
  allowed: boolean;
  /** When refused: seconds until it would fit. */
  retryAfter: number;
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

/**
 * Request and token budgets per minute, as LLM providers set them, held in one place for a
 * fleet. A GCRA (generic cell rate algorithm: a token bucket kept as one timestamp per budget)
 * decides each call in one atomic step, in one Lua script with `redis`: a burst of up to a
 * minute's budget, then a steady rate. `penalize` pauses the key for everyone, e.g. on a 429
 * with `Retry-After`.
 *
 * @example
 * const rate = new RateLimiter({ redis, key: 'openai', requestsPerMinute: 500, tokensPerMinute: 200_000 });
 * await rate.acquire({ tokens: 1200 });
 * try { await callModel() } catch (e) { if (e.status === 429) rate.penalize(Number(e.headers['retry-after'])) }
 */
export class RateLimiter {
  /** The budget's key. */
  readonly key: string;
  /** Requests per minute, when set. */
  readonly requestsPerMinute: number | undefined;
  /** Tokens per minute, when set. */
  readonly tokensPerMinute: number | undefined;
  /** Longest pause `penalize` applies, in seconds (the `maxPenalty` option). */
  readonly maxPenalty: number;

  private readonly store: RateStore;
  private readonly ownsStore: boolean;
  private readonly maxWaitMs: number;
  private readonly reqIntervalMs: number;
  private readonly tokIntervalMs: number;
  private readonly events = new Emitter<RateLimiterEvents>();
  private pausedUntil = 0;
  private closed = false;
  private readonly m: { refused: CounterHandle; wait: HistogramHandle; penalties: CounterHandle };

  constructor(options: RateLimiterOptions) {
    const o = optionsObject<RateLimiterOptions>(options, 'options');
    this.key = o.key === undefined ? 'default' : validateId(o.key, 'key');
    this.requestsPerMinute =
      o.requestsPerMinute === undefined
        ? undefined
        : assertNumber(o.requestsPerMinute, 'requestsPerMinute', { positive: true });
    this.tokensPerMinute =
      o.tokensPerMinute === undefined
        ? undefined
        : assertNumber(o.tokensPerMinute, 'tokensPerMinute', { positive: true });
    if (this.requestsPerMinute === undefined && this.tokensPerMinute === undefined) {
      throw new ValidationError(
        'RateLimiter needs requestsPerMinute or tokensPerMinute (or both)',
        {
          option: 'requestsPerMinute',
        },
      );
    }
    this.reqIntervalMs = this.requestsPerMinute ? 60_000 / this.requestsPerMinute : 0;
    this.tokIntervalMs = this.tokensPerMinute ? 60_000 / this.tokensPerMinute : 0;
    this.maxWaitMs =
      (o.maxWait === undefined ? 5 : assertDuration(o.maxWait, 'maxWait', { allowZero: true })) *
      1000;
    this.maxPenalty =
      o.maxPenalty === undefined
        ? DEFAULT_MAX_PENALTY
        : assertDuration(o.maxPenalty, 'maxPenalty', { allowZero: true });
    if (o.store !== undefined) {
      if (typeof o.store !== 'object' || o.store === null || typeof o.store.take !== 'function') {
        throw new ValidationError(`store must be a RateStore, received ${describeValue(o.store)}`, {
          option: 'store',
        });
      }
      this.store = o.store;
      this.ownsStore = false;
    } else {
      this.ownsStore = true;
      const conn = resolveRedis(o.redis, o.connection ?? {});
      const prefix = o.prefix === undefined ? 'azs:rate:' : validatePrefix(o.prefix);
      this.store = conn ? new RedisRateStore(conn, prefix) : new MemoryRateStore();
    }
    const metrics = o.metrics ?? noopMetrics;
    const labels = { limiter: this.key };
    this.m = {
      refused: metrics.counter('resilience_rate_refused_total', labels),
      wait: metrics.histogram('resilience_rate_wait_seconds', labels),
      penalties: metrics.counter('resilience_rate_penalties_total', labels),
    };
  }

  /** Adds an event listener; returns a disposer. */
  on<K extends keyof RateLimiterEvents>(event: K, listener: RateLimiterEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  private cost(tokens: unknown): RateCost {
    const t = tokens === undefined ? 0 : assertNumber(tokens, 'tokens', { min: 0 });
    if (this.tokensPerMinute !== undefined && t > this.tokensPerMinute) {
      throw new ValidationError(
        `tokens ${t} is above tokensPerMinute=${this.tokensPerMinute}: the call could never fit`,
        { option: 'tokens', context: { tokens: t, tokensPerMinute: this.tokensPerMinute } },
      );
    }
    return {
      requestIntervalMs: this.reqIntervalMs,
      tokenIntervalMs: this.tokIntervalMs,
      tokens: t,
      periodMs: 60_000,
    };
  }

  /**
   * Spends one request (and `tokens`) of the budget, waiting up to `maxWait` seconds for it.
   * Throws {@link LimitExceededError} with `retryAfter` (seconds) when the budget frees later
   * than that, {@link CancelledError} when `signal` aborts.
   */
  async acquire(options: RateAcquireOptions = {}): Promise<RateAcquireResult> {
    const o = optionsObject<RateAcquireOptions>(options, 'options');
    const cost = this.cost(o.tokens);
    const maxWaitMs =
      o.maxWait === undefined
        ? this.maxWaitMs
        : assertDuration(o.maxWait, 'maxWait', { allowZero: true }) * 1000;
    const signal = assertSignal(o.signal);
    const t0 = Date.now();
    const deadline = t0 + maxWaitMs;
    for (;;) {
      if (this.closed) throw new ClosedError(`rate limiter ${JSON.stringify(this.key)} is closed`);
      if (signal?.aborted) throw this.cancelled(signal);
      const now = Date.now();
      let retryMs: number;
      if (this.pausedUntil > now) {
        retryMs = this.pausedUntil - now;
      } else {
        const r = await this.store.take(this.key, cost);
        if (r.allowed) {
          const waited = (Date.now() - t0) / 1000;
          this.m.wait.observe(waited);
          return { waited };
        }
        // A store's hint is trusted only as far as it is sane: a refused take never means
        // "retry at once" (that would spin on the backend) nor "never".
        retryMs = r.retryAfterMs >= 1 && r.retryAfterMs <= MAX_WAIT_HINT_MS ? r.retryAfterMs : 1;
      }
      if (Date.now() + retryMs > deadline) {
        this.m.refused.inc();
        throw new LimitExceededError(
          `rate limit ${JSON.stringify(this.key)} has no budget for ${(retryMs / 1000).toFixed(3)} s (maxWait ${maxWaitMs / 1000} s)`,
          { retryAfter: retryMs / 1000, context: { key: this.key, tokens: cost.tokens } },
        );
      }
      // A little jitter so callers that woke together do not all retry in the same millisecond.
      try {
        await sleep(retryMs + Math.random() * Math.min(20, 1 + retryMs * 0.05), signal);
      } catch {
        throw this.cancelled(signal as AbortSignal);
      }
    }
  }

  /** Spends the budget if it is there now; never waits. */
  async tryAcquire(options: Pick<RateAcquireOptions, 'tokens'> = {}): Promise<RateTryResult> {
    const o = optionsObject<RateAcquireOptions>(options, 'options');
    const cost = this.cost(o.tokens);
    if (this.closed) throw new ClosedError(`rate limiter ${JSON.stringify(this.key)} is closed`);
    const now = Date.now();
    if (this.pausedUntil > now)
      return { allowed: false, retryAfter: (this.pausedUntil - now) / 1000 };
    const r = await this.store.take(this.key, cost);
    if (!r.allowed) this.m.refused.inc();
    return { allowed: r.allowed, retryAfter: r.retryAfterMs / 1000 };
  }

  /**
   * The budget left now, for every instance sharing the key, without spending any (one
   * read-only step on the store). For dashboards and health pages.
   * @throws ValidationError when a custom `store` has no `peek`.
   */
  async budget(): Promise<RateBudget> {
    if (this.closed) throw new ClosedError(`rate limiter ${JSON.stringify(this.key)} is closed`);
    if (typeof this.store.peek !== 'function') {
      throw new ValidationError('this rate store cannot be read without spending (no peek())', {
        option: 'store',
      });
    }
    const p = await this.store.peek(this.key);
    const left = (aheadMs: number, intervalMs: number, max: number | undefined) =>
      max === undefined || intervalMs <= 0
        ? null
        : Math.max(0, Math.min(max, Math.floor((60_000 - aheadMs) / intervalMs + 1e-9)));
    const pausedMs = Math.max(p.pausedForMs, this.pausedUntil - Date.now(), 0);
    return {
      requestsLeft: left(p.requestAheadMs, this.reqIntervalMs, this.requestsPerMinute),
      tokensLeft: left(p.tokenAheadMs, this.tokIntervalMs, this.tokensPerMinute),
      pausedFor: pausedMs / 1000,
    };
  }

  /**
   * Pauses the key for `retryAfterSeconds` for every instance (a provider's `Retry-After`),
   * cut to `maxPenalty` (300 s by default). It takes effect in this process at once; the
   * returned promise settles when the backend has it and never rejects (a backend failure is
   * reported through the `error` event).
   * @throws ValidationError when `retryAfterSeconds` is negative, NaN or not finite.
   */
  penalize(retryAfterSeconds: number): Promise<void> {
    const s = Math.min(
      assertNumber(retryAfterSeconds, 'retryAfterSeconds', { min: 0 }),
      this.maxPenalty,
    );
    if (s === 0) return Promise.resolve();
    this.m.penalties.inc();
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + s * 1000);
    return this.store.pause(this.key, s * 1000).catch((e) => {
      this.events.emit('error', e);
    });
  }

  private cancelled(signal: AbortSignal): CancelledError {
    return new CancelledError(`wait for rate limit ${JSON.stringify(this.key)} was aborted`, {
      cause: signal.reason,
      context: { key: this.key },
    });
  }

  /** Closes a Redis connection it created. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.events.clear();
    if (this.ownsStore) await this.store.close();
  }
}
