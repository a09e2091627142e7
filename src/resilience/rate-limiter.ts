import { randomUUID } from 'node:crypto';
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
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { validateId } from '../core/keys.js';
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
import type { RateCost, RateMode, RateStore } from './store.js';

/** The longest `window`, seconds: one day. */
const MAX_WINDOW = 86_400;
/** The default `maxPenalty`, seconds. */
const DEFAULT_MAX_PENALTY = 300;
// The longest retry hint (ms) a store may give: a pause is at most 10 years.
const MAX_WAIT_HINT_MS = MAX_DURATION_SECONDS * 1000;

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

/**
 * Request and token budgets per minute, as LLM providers set them, held in one place for a
 * fleet. Two ways to count (`mode`): a GCRA (generic cell rate algorithm: a token bucket kept
 * as one timestamp per budget) grants a window's budget as a burst, then a steady rate; a
 * sliding window grants at most the window's budget in any `window` seconds. Either decides each
 * call in one atomic step, in one Lua script with `redis`. Token estimates are corrected after
 * the call with `settle` (both ways, once per grant). `penalize` pauses the key for everyone,
 * e.g. on a 429 with `Retry-After`.
 *
 * @example
 * const rate = new RateLimiter({ redis, key: 'openai', mode: 'sliding-window', requestsPerMinute: 500, tokensPerMinute: 200_000 });
 * const { grant } = await rate.acquire({ tokens: 1200 });
 * try { const r = await callModel(); await rate.settle(grant, r.usage.total_tokens) }
 * catch (e) { if (e.status === 429) rate.penalize(Number(e.headers['retry-after'])) }
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
  /** How the budgets are counted (the `mode` option). */
  readonly mode: RateMode;
  /** The period the budgets are counted over, in seconds (the `window` option). */
  readonly window: number;
  /**
   * The most tokens one call may take: the token budget of one window
   * (`tokensPerMinute × window / 60`); undefined without a token budget.
   */
  readonly tokenCapacity: number | undefined;

  private readonly store: RateStore;
  private readonly backend: ResolvedBackend<RateStore>;
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
    if (o.mode !== undefined && o.mode !== 'gcra' && o.mode !== 'sliding-window') {
      throw new ValidationError(
        `mode must be 'gcra' or 'sliding-window', received ${describeValue(o.mode)}`,
        { option: 'mode' },
      );
    }
    this.mode = o.mode ?? 'gcra';
    this.window =
      o.window === undefined ? 60 : assertDuration(o.window, 'window', { max: MAX_WINDOW });
    if (this.window < 1) {
      throw new ValidationError(`window must be at least 1 second, received ${this.window}`, {
        option: 'window',
      });
    }
    this.tokenCapacity =
      this.tokensPerMinute === undefined ? undefined : (this.tokensPerMinute * this.window) / 60;
    if (
      this.mode === 'sliding-window' &&
      this.requestsPerMinute !== undefined &&
      (this.requestsPerMinute * this.window) / 60 < 1
    ) {
      throw new ValidationError(
        `requestsPerMinute=${this.requestsPerMinute} allows less than one request per ${this.window} s window`,
        { option: 'requestsPerMinute' },
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
    this.backend = resolveBackend(o, {
      module: 'RateLimiter',
      storeName: 'RateStore',
      prefix: 'azs:rate:',
      memory: () => new MemoryRateStore(),
      redis: (conn, { prefix }) => new RedisRateStore(conn, { prefix }),
      validateStore: (x): x is RateStore => hasMethods(x, ['take', 'pause', 'close']),
    });
    this.store = this.backend.store;
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
    if (this.tokenCapacity !== undefined && t > this.tokenCapacity) {
      throw new ValidationError(
        `tokens ${t} is above the ${this.window} s window's budget of ${this.tokenCapacity} (tokensPerMinute=${this.tokensPerMinute}): the call could never fit`,
        { option: 'tokens', context: { tokens: t, tokensPerMinute: this.tokensPerMinute } },
      );
    }
    return this.costOf(t);
  }

  private costOf(tokens: number): RateCost {
    return {
      requestIntervalMs: this.reqIntervalMs,
      tokenIntervalMs: this.tokIntervalMs,
      tokens,
      periodMs: this.window * 1000,
      mode: this.mode,
      requestLimit: this.requestsPerMinute ? (this.requestsPerMinute * this.window) / 60 : 0,
      tokenLimit: this.tokenCapacity ?? 0,
    };
  }

  private grant(tokens: number, at: number | undefined): RateGrant {
    return { id: randomUUID(), tokens, at };
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
          return { waited, grant: this.grant(cost.tokens, r.at) };
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
    if (!r.allowed) {
      this.m.refused.inc();
      return { allowed: false, retryAfter: r.retryAfterMs / 1000 };
    }
    return { allowed: true, retryAfter: 0, grant: this.grant(cost.tokens, r.at) };
  }

  /**
   * Corrects the token budget by `tokens`: a positive number charges tokens a call used beyond
   * its estimate (taken even when the budget is overdrawn: the provider counted them; later
   * calls wait until it is paid off; at most one window's budget per call), a negative one gives
   * back tokens it did not use. With `options.grant` the correction is applied at most once for
   * that grant, also when a lost reply makes the client resend it. A no-op without a token
   * budget or for `0`.
   * @param tokens Signed token count.
   * @throws ValidationError when `tokens` is not a finite number, or the store cannot adjust.
   * @throws ClosedError after `close()`.
   */
  async adjust(tokens: number, options: RateAdjustOptions = {}): Promise<void> {
    const delta = assertNumber(tokens, 'tokens');
    const o = optionsObject<RateAdjustOptions>(options, 'options');
    const grant = o.grant === undefined ? undefined : checkGrant(o.grant);
    if (this.closed) throw new ClosedError(`rate limiter ${JSON.stringify(this.key)} is closed`);
    if (this.tokenCapacity === undefined || delta === 0) return;
    if (typeof this.store.adjust !== 'function') {
      throw new ValidationError('the rate store has no adjust(): it cannot correct tokens', {
        option: 'store',
      });
    }
    const capped = Math.min(delta, this.tokenCapacity);
    await this.store.adjust(this.key, this.costOf(0), {
      tokens: capped,
      id: grant ? grant.id : randomUUID(),
      ...(grant?.at !== undefined ? { at: grant.at } : {}),
    });
  }

  /**
   * Gives back `tokens` a call did not use: `adjust(-tokens, options)`.
   * @param tokens Tokens to give back (>= 0).
   */
  async refund(tokens: number, options: RateAdjustOptions = {}): Promise<void> {
    return this.adjust(-assertNumber(tokens, 'tokens', { min: 0 }), options);
  }

  /**
   * Settles a grant with the tokens the call really used (the provider's reported usage):
   * charges the difference when it used more than the estimate, refunds it when less. Applied
   * at most once per grant.
   * @param grant What `acquire`/`tryAcquire` returned.
   * @param actualTokens Tokens the call used (>= 0).
   */
  async settle(grant: RateGrant, actualTokens: number): Promise<void> {
    const g = checkGrant(grant);
    const actual = assertNumber(actualTokens, 'actualTokens', { min: 0 });
    return this.adjust(actual - g.tokens, { grant: g });
  }

  /**
   * The budget left now, for every instance sharing the key, without spending any (one
   * read-only step on the store). For dashboards and health pages.
   * @throws ValidationError when a custom `store` has no `peek`, or in `sliding-window` mode
   *   (its slots are not read without spending).
   */
  async budget(): Promise<RateBudget> {
    if (this.closed) throw new ClosedError(`rate limiter ${JSON.stringify(this.key)} is closed`);
    if (typeof this.store.peek !== 'function') {
      throw new ValidationError('this rate store cannot be read without spending (no peek())', {
        option: 'store',
      });
    }
    if (this.mode === 'sliding-window') {
      // peek() reads GCRA arrival times; a sliding window's slots are not read without spending.
      throw new ValidationError(
        'budget() reads GCRA budgets; this limiter is in sliding-window mode',
        {
          option: 'mode',
        },
      );
    }
    const p = await this.store.peek(this.key);
    // A GCRA budget holds one window's worth: `window` seconds of the per-minute rate.
    const horizonMs = this.window * 1000;
    const left = (aheadMs: number, intervalMs: number, perMinute: number | undefined) =>
      perMinute === undefined || intervalMs <= 0
        ? null
        : Math.max(
            0,
            Math.min(
              Math.floor((perMinute * this.window) / 60),
              Math.floor((horizonMs - aheadMs) / intervalMs + 1e-9),
            ),
          );
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
    await this.backend.close();
  }
}

function checkGrant(grant: unknown): RateGrant {
  const g = grant as RateGrant;
  if (
    typeof g !== 'object' ||
    g === null ||
    typeof g.id !== 'string' ||
    g.id === '' ||
    g.id.length > 200 ||
    typeof g.tokens !== 'number' ||
    !Number.isFinite(g.tokens) ||
    (g.at !== undefined && (typeof g.at !== 'number' || !Number.isFinite(g.at)))
  ) {
    throw new ValidationError(
      `grant must be what acquire() or tryAcquire() returned, received ${describeValue(grant)}`,
      { option: 'grant' },
    );
  }
  return g;
}
