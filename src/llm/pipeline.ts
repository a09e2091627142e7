/**
 * The LLM pipeline every adapter (AI SDK, LangChain, raw calls) is a thin shell over. One request:
 * cache lookup → budget guard → rate limit (requests and estimated tokens) → concurrency slot →
 * the model's circuit breaker → the call → spend from the reported usage → cache write. A
 * provider failure moves to the next model of the request; the failed model's breaker (shared
 * over Redis when its options say so) keeps the fleet off it for `cooldown` seconds.
 */
import {
  TimeoutError,
  ValidationError,
  describeValue,
  isBudgetExceededError,
  isCancelledError,
  isValidationError,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { KEY_LAYOUT, sha256Hex, validatePrefix } from '../core/keys.js';
import { type MetricsSink, noopMetrics } from '../core/metrics.js';
import { assertDuration, optionalDuration } from '../core/timers.js';
import { assertFunction, assertObject } from '../core/validate.js';
import {
  type CacheLockOptions,
  type DistributedCache,
  isDistributedCache,
} from '../cache/distributed-cache.js';
import { stableStringify } from '../cache/stable-json.js';
import { type SpanHandle, isTracingEnabled, withSpan } from '../core/trace.js';
import { CircuitBreaker, type CircuitOptions } from '../resilience/circuit.js';
import type { ConcurrencyLimiter } from '../resilience/limiter.js';
import {
  type RateGrant,
  RateLimiter,
  type RateLimiterOptions,
} from '../resilience/rate-limiter.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import { isProviderFailure, retryAfterOf, statusOf } from './classify.js';
import {
  type LLMEntry,
  LLMEntryBuilder,
  type LLMStreamPart,
  type LLMTokenUsage,
  entryToParts,
  isLLMEntry,
} from './entry.js';
import { Flight, type LLMAnswerSource } from './flight.js';

/** One model a request may be sent to: the adapter's way of calling it. */
export interface LLMModelCall {
  /** The model id: names the breaker, looks up the price, `gen_ai.request.model`. */
  model: string;
  /** The provider name (`gen_ai.system`), e.g. `openai`. @default 'unknown' */
  provider?: string;
  /** Asks for the whole answer. One of `generate`/`stream` is required. */
  generate?: (signal: AbortSignal) => Promise<LLMEntry>;
  /** Asks for the answer as a stream of parts. */
  stream?: (signal: AbortSignal) => AsyncIterable<LLMStreamPart>;
}

/** One request through the pipeline. */
export interface LLMPipelineRequest {
  /**
   * Everything that changes the answer, as JSON (model id, prompt, tools, sampling options):
   * hashed into the cache key. Leave out abort signals, headers and anything else that does not.
   */
  request: unknown;
  /** The models to try, primary first. */
  models: readonly LLMModelCall[];
  /**
   * Sampling temperature; only `0` is cached unless `cacheNonDeterministic`.
   * @default unset (not cached)
   */
  temperature?: number;
  /** Output token limit, added to the prompt estimate for the rate limiter. @default unset */
  maxOutputTokens?: number;
  /** Aborts this caller's wait (the call itself stops when no caller is left). @default none */
  signal?: AbortSignal;
  /** False keeps this request out of the cache (it still goes through every other stage). @default true */
  cacheable?: boolean;
}

/** What a finished request reports besides the answer. */
export interface LLMPipelineResult {
  /** The answer. */
  entry: LLMEntry;
  /**
   * `cache`: a stored entry; `peer`: another caller's call (this process or, through the cache
   * lock, another one); `model`: this request called the model; `bypass`: not cacheable.
   */
  source: LLMAnswerSource;
  /** The model that answered (undefined for a cache hit). */
  model: string | undefined;
}

/** A streamed answer: iterate the parts; `result` settles when the answer is whole. */
export interface LLMPipelineStream extends AsyncIterable<LLMStreamPart> {
  /** The whole answer and where it came from (rejects as the stream does). */
  readonly result: Promise<LLMPipelineResult>;
  /** Where the parts come from, known once the first part is out. */
  readonly source: LLMAnswerSource;
  /** The model answering, once one is called. */
  readonly model: string | undefined;
}

/** What `countTokens` receives. */
export interface LLMTokenEstimateInput {
  /** The request's key material ({@link LLMPipelineRequest.request}). */
  request: unknown;
  /** The output limit, when the request has one. */
  maxOutputTokens: number | undefined;
}

/** Options of {@link LLMPipeline}. Every stage is optional. */
export interface LLMPipelineOptions {
  /** Where answers are cached. @default no cache */
  cache?: DistributedCache;
  /** Seconds an answer stays cached. @default the cache's ttl */
  ttl?: number;
  /**
   * Cache requests whose temperature is not 0 too. Off by default: a sampled answer is one draw
   * among many, and serving it again changes the behaviour the caller asked for.
   * @default false
   */
  cacheNonDeterministic?: boolean;
  /** Cache key prefix. @default 'llm:' */
  keyPrefix?: string;
  /**
   * The Redis lock on a miss, so one call runs per fleet for one request (others wait for the
   * entry). `false` turns it off. Seconds: `ttl` bounds a dead holder, `wait` how long others
   * wait before calling themselves (keep it above your longest answer).
   * @default { ttl: 60, wait: 60 }
   */
  lock?: boolean | CacheLockOptions;
  /**
   * Refuses calls (BudgetExceededError) once its hourly budget is spent; records spend.
   * @default no budget
   */
  optimizer?: CostOptimizer;
  /** Spend category given to the optimizer. @default 'llm' */
  category?: string;
  /**
   * Request and token budgets per minute: a `RateLimiter`, or its options, from which the
   * pipeline makes one with `mode: 'sliding-window'` by default (in any window of 60 s, the
   * tokens started stay within `tokensPerMinute` plus what corrections charged) and closes in
   * `close()`. Give a limiter made with `mode: 'sliding-window'` for the same literal bound.
   * @default no rate limit
   */
  rateLimiter?: RateLimiter | RateLimiterOptions;
  /**
   * Estimated tokens of a request, spent from the token budget before the call and corrected
   * with the reported usage after. @default JSON length of the request / 4, plus maxOutputTokens
   */
  countTokens?: (input: LLMTokenEstimateInput) => number;
  /** Bounds the calls in flight. @default no bound */
  limiter?: ConcurrencyLimiter;
  /**
   * A breaker per model: circuit options (with `redis`, shared by the fleet) from which one
   * breaker per model is made, named `<name>:<provider>:<model>`; or one `CircuitBreaker` for
   * the primary model. By default a breaker opens on the first provider failure
   * (`failureThreshold: 1`), so a failed model cools down at once.
   * @default no breaker
   */
  breaker?: CircuitBreaker | CircuitOptions;
  /**
   * Seconds a failed model stays out of use (the breakers' `recoveryTimeout`). @default 30
   */
  cooldown?: number;
  /** Seconds one attempt may take before it counts as a timeout (and falls back). @default none */
  timeout?: number;
  /** Which failures move to the next model and count against a breaker. @default isProviderFailure */
  isFailure?: (error: unknown) => boolean;
  /**
   * Replay of a stored answer as a stream: `chunkChars` characters per text part (0: one part),
   * `delayMs` milliseconds between parts. @default { chunkChars: 0, delayMs: 0 }
   */
  replay?: {
    /** Characters per replayed text part; `0` sends the text as one part. @default 0 */
    chunkChars?: number;
    /** Milliseconds between replayed parts. @default 0 */
    delayMs?: number;
  };
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Events of an {@link LLMPipeline}. */
export type LLMPipelineEvents = {
  /** A model failed and the next one is tried. */
  fallback: (info: { from: string; to: string; error: unknown }) => void;
  /** Spend was recorded for a call. */
  spend: (info: { model: string; usage: LLMTokenUsage; dollars: number }) => void;
  /** Something off the answer's path failed (spend recording, cache read); the call went on. */
  error: (error: unknown) => void;
};

const DEFAULT_LOCK: CacheLockOptions = { ttl: 60, wait: 60 };

// Thrown out of the cache loader to return an answer without storing it.
class Uncacheable {
  constructor(readonly entry: LLMEntry) {}
}

function defaultCount(input: LLMTokenEstimateInput): number {
  let chars = 0;
  try {
    chars = stableStringify(input.request, 'request').length;
  } catch {
    chars = 0;
  }
  return Math.ceil(chars / 4) + (input.maxOutputTokens ?? 0);
}

function isBreaker(v: unknown): v is CircuitBreaker {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as CircuitBreaker).execute === 'function' &&
    typeof (v as CircuitBreaker).onOpen === 'function'
  );
}

/**
 * The LLM pipeline. Adapters build an {@link LLMPipelineRequest} per call; `generate` returns
 * the whole answer, `stream` its parts, and both share one cache entry and one in-flight call.
 *
 * @example
 * const llm = new LLMPipeline({ cache, optimizer, rateLimiter, limiter, breaker: { redis } });
 * const { entry } = await llm.generate({ request: body, temperature: 0, models: [callOpenAI] });
 */
export class LLMPipeline {
  private readonly o: LLMPipelineOptions;
  private readonly ttl: number | undefined;
  private readonly prefix: string;
  private readonly lock: boolean | CacheLockOptions;
  private readonly cooldown: number;
  private readonly timeoutMs: number | undefined;
  private readonly isFailure: (error: unknown) => boolean;
  private readonly countTokens: (input: LLMTokenEstimateInput) => number;
  private readonly rate: RateLimiter | undefined;
  private readonly ownsRate: boolean = false;
  private readonly flights = new Map<string, Flight>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly events = new Emitter<LLMPipelineEvents>();
  private readonly m: ReturnType<LLMPipeline['makeMetrics']>;

  constructor(options: LLMPipelineOptions = {}) {
    const o = assertObject(options, 'options') as LLMPipelineOptions;
    if (o.cache !== undefined && !isDistributedCache(o.cache)) {
      throw new ValidationError(
        `cache must be a DistributedCache, received ${describeValue(o.cache)}`,
        {
          option: 'cache',
        },
      );
    }
    this.ttl = optionalDuration(o.ttl, 'ttl');
    if (o.cacheNonDeterministic !== undefined && typeof o.cacheNonDeterministic !== 'boolean') {
      throw new ValidationError(
        `cacheNonDeterministic must be a boolean, received ${describeValue(o.cacheNonDeterministic)}`,
        { option: 'cacheNonDeterministic' },
      );
    }
    this.prefix =
      o.keyPrefix === undefined ? KEY_LAYOUT.llm : validatePrefix(o.keyPrefix, 'keyPrefix');
    this.lock = o.lock === undefined || o.lock === true ? DEFAULT_LOCK : o.lock;
    this.cooldown = o.cooldown === undefined ? 30 : assertDuration(o.cooldown, 'cooldown');
    this.timeoutMs =
      o.timeout === undefined ? undefined : assertDuration(o.timeout, 'timeout') * 1000;
    this.isFailure =
      o.isFailure === undefined ? isProviderFailure : assertFunction(o.isFailure, 'isFailure');
    this.countTokens =
      o.countTokens === undefined ? defaultCount : assertFunction(o.countTokens, 'countTokens');
    for (const [name, fn] of [
      ['optimizer', 'recordLLMUsage'],
      ['limiter', 'run'],
    ] as const) {
      const v = o[name] as unknown;
      if (
        v !== undefined &&
        (typeof v !== 'object' ||
          v === null ||
          typeof (v as Record<string, unknown>)[fn] !== 'function')
      ) {
        throw new ValidationError(
          `${name} must be a ${name === 'optimizer' ? 'CostOptimizer' : name === 'limiter' ? 'ConcurrencyLimiter' : 'RateLimiter'}, received ${describeValue(v)}`,
          { option: name },
        );
      }
    }
    if (o.rateLimiter !== undefined && !(o.rateLimiter instanceof RateLimiter)) {
      const r = assertObject(o.rateLimiter, 'rateLimiter') as Record<string, unknown>;
      if (typeof r.acquire === 'function' || typeof r.tryAcquire === 'function') {
        // A RateLimiter from another copy of the package: used as it is.
        this.rate = o.rateLimiter as unknown as RateLimiter;
      } else {
        if (r.requestsPerMinute === undefined && r.tokensPerMinute === undefined) {
          throw new ValidationError(
            `rateLimiter must be a RateLimiter or its options (with requestsPerMinute or tokensPerMinute), received ${describeValue(o.rateLimiter)}`,
            { option: 'rateLimiter' },
          );
        }
        try {
          this.rate = new RateLimiter({ mode: 'sliding-window', ...(r as RateLimiterOptions) });
        } catch (e) {
          if (!isValidationError(e)) throw e;
          throw new ValidationError(e.message, {
            option: `rateLimiter.${e.option ?? ''}`,
            cause: e,
          });
        }
        this.ownsRate = true;
      }
    } else this.rate = o.rateLimiter;
    if (o.breaker !== undefined && !isBreaker(o.breaker)) assertObject(o.breaker, 'breaker');
    if (o.replay !== undefined) {
      assertObject(o.replay, 'replay');
      if (o.replay.chunkChars !== undefined) {
        const c = o.replay.chunkChars;
        if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
          throw new ValidationError(
            `replay.chunkChars must be an integer >= 0, received ${describeValue(c)}`,
            {
              option: 'replay.chunkChars',
            },
          );
        }
      }
      optionalDuration(o.replay.delayMs, 'replay.delayMs', { unit: 'ms', allowZero: true });
    }
    this.o = o;
    this.m = this.makeMetrics(o.metrics ?? noopMetrics);
  }

  private makeMetrics(metrics: MetricsSink) {
    return {
      cache: metrics.counter('llm_requests_total', { source: 'cache' }),
      peer: metrics.counter('llm_requests_total', { source: 'peer' }),
      model: metrics.counter('llm_requests_total', { source: 'model' }),
      bypass: metrics.counter('llm_requests_total', { source: 'bypass' }),
      failed: metrics.counter('llm_requests_total', { source: 'error' }),
      fallbacks: metrics.counter('llm_fallbacks_total'),
      inputTokens: metrics.counter('llm_tokens_total', { kind: 'input' }),
      outputTokens: metrics.counter('llm_tokens_total', { kind: 'output' }),
      budgetRefused: metrics.counter('llm_budget_refused_total'),
      duration: metrics.histogram('llm_request_seconds'),
      firstPart: metrics.histogram('llm_time_to_first_part_seconds'),
    };
  }

  /** Adds an event listener; returns a disposer. */
  on<K extends keyof LLMPipelineEvents>(event: K, listener: LLMPipelineEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /** The cache key of a request (undefined when it is not cacheable). */
  cacheKey(req: LLMPipelineRequest): string | undefined {
    if (!this.o.cache || req.cacheable === false) return undefined;
    if (!this.o.cacheNonDeterministic && req.temperature !== 0) return undefined;
    try {
      return this.prefix + sha256Hex(stableStringify(req.request, 'LLM request'));
    } catch {
      // Binary prompt parts (images as bytes) have no JSON form: such requests are not cached.
      return undefined;
    }
  }

  /** The whole answer of `req`. */
  async generate(req: LLMPipelineRequest): Promise<LLMPipelineResult> {
    const flight = this.start(req, 'generate');
    const entry = await flight.whole(req.signal);
    return { entry, source: flight.source, model: flight.model };
  }

  /** The answer of `req` as parts, as they arrive (or replayed from the cache). */
  stream(req: LLMPipelineRequest): LLMPipelineStream {
    const flight = this.start(req, 'stream');
    const delayMs = this.o.replay?.delayMs ?? 0;
    const result = flight.settled.then((entry) => ({
      entry,
      source: flight.source,
      model: flight.model,
    }));
    result.catch(() => undefined);
    return {
      result,
      get source() {
        return flight.source;
      },
      get model() {
        return flight.model;
      },
      [Symbol.asyncIterator]: () => flight.read(req.signal, delayMs),
    };
  }

  /** The breaker of one model (made on first use from the `breaker` options). */
  breakerFor(call: LLMModelCall, index: number): CircuitBreaker | undefined {
    const b = this.o.breaker;
    if (b === undefined) return undefined;
    if (isBreaker(b)) return index === 0 ? b : undefined;
    const name = `${b.name ?? 'llm'}:${call.provider ?? 'unknown'}:${call.model}`;
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = new CircuitBreaker({
        failureThreshold: 1,
        ...b,
        name,
        recoveryTimeout: this.o.cooldown ?? b.recoveryTimeout ?? this.cooldown,
        isFailure: b.isFailure ?? this.isFailure,
      });
      this.breakers.set(name, breaker);
    }
    return breaker;
  }

  private checkRequest(req: LLMPipelineRequest): void {
    assertObject(req, 'request');
    if (!Array.isArray(req.models) || req.models.length === 0) {
      throw new ValidationError(
        `models must be a non-empty array, received ${describeValue(req.models)}`,
        {
          option: 'models',
        },
      );
    }
    for (const [i, m] of req.models.entries()) {
      if (typeof m !== 'object' || m === null || typeof m.model !== 'string' || m.model === '') {
        throw new ValidationError(`models[${i}].model must be a non-empty string`, {
          option: `models[${i}].model`,
        });
      }
      if (typeof m.generate !== 'function' && typeof m.stream !== 'function') {
        throw new ValidationError(`models[${i}] needs a generate or a stream function`, {
          option: `models[${i}]`,
        });
      }
    }
  }

  private start(req: LLMPipelineRequest, mode: 'generate' | 'stream'): Flight {
    this.checkRequest(req);
    const key = this.cacheKey(req);
    if (key !== undefined) {
      const running = this.flights.get(key);
      if (running) return running;
    }
    const flight = new Flight();
    if (key !== undefined) {
      this.flights.set(key, flight);
      void flight.settled.then(
        () => this.flights.delete(key),
        () => this.flights.delete(key),
      );
    } else flight.source = 'bypass';
    const t0 = performance.now();
    const primary = req.models[0] as LLMModelCall;
    const run = (span: SpanHandle) => this.run(flight, req, key, mode, span);
    const attrs = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': primary.provider ?? 'unknown',
      'gen_ai.request.model': primary.model,
      'gen_ai.request.temperature': req.temperature,
      'gen_ai.request.max_tokens': req.maxOutputTokens,
      'azscale.llm.stream': mode === 'stream',
    };
    const p = isTracingEnabled()
      ? withSpan(`azscale.llm.chat`, attrs, run, { kind: 'client' })
      : run(undefined as unknown as SpanHandle);
    const done = () => {
      this.m.duration.observe((performance.now() - t0) / 1000);
      if (flight.firstPartAt !== undefined) {
        this.m.firstPart.observe((flight.firstPartAt - t0) / 1000);
      }
    };
    // The flight carries the outcome to its readers; this promise only closes the span.
    p.then(done, done);
    return flight;
  }

  private async run(
    flight: Flight,
    req: LLMPipelineRequest,
    key: string | undefined,
    mode: 'generate' | 'stream',
    span: SpanHandle | undefined,
  ): Promise<void> {
    try {
      let entry: LLMEntry;
      if (key === undefined) {
        entry = await this.load(flight, req, mode);
      } else {
        const cache = this.o.cache as DistributedCache;
        const hit = await this.lookup(cache, key);
        if (hit) {
          flight.source = 'cache';
          this.replayInto(flight, hit);
          entry = hit;
        } else {
          let ran = false;
          try {
            const v = await cache.getOrSetJSON<unknown>(
              key,
              async () => {
                ran = true;
                const e = await this.load(flight, req, mode);
                // An answer cut short by the provider is returned, not stored.
                if (e.finishReason === 'error' || e.extra?.noStore === true)
                  throw new Uncacheable(e);
                return e;
              },
              {
                ...(this.ttl !== undefined ? { ttl: this.ttl } : {}),
                lock: this.lock,
              },
            );
            if (!isLLMEntry(v))
              throw new ValidationError(`cached value of ${key} is not an LLM entry`, {
                option: 'cache',
              });
            entry = v;
            if (!ran) {
              flight.source = 'peer';
              this.replayInto(flight, entry);
            }
          } catch (e) {
            if (!(e instanceof Uncacheable)) throw e;
            entry = e.entry;
          }
        }
      }
      const counter = this.m[flight.source];
      counter.inc();
      if (span?.isRecording()) {
        span.setAttributes({
          'azscale.llm.source': flight.source,
          'gen_ai.response.model': entry.model,
          'gen_ai.response.id': entry.responseId,
          'gen_ai.response.finish_reasons': [entry.finishReason],
          'gen_ai.usage.input_tokens':
            flight.source === 'model' || flight.source === 'bypass' ? entry.usage?.inputTokens : 0,
          'gen_ai.usage.output_tokens':
            flight.source === 'model' || flight.source === 'bypass' ? entry.usage?.outputTokens : 0,
        });
      }
      flight.finish(entry);
    } catch (e) {
      this.m.failed.inc();
      flight.fail(e);
      throw e;
    }
  }

  private async lookup(cache: DistributedCache, key: string): Promise<LLMEntry | undefined> {
    let v: unknown;
    try {
      v = await cache.getJSON<unknown>(key);
    } catch (e) {
      // An unreadable entry is a miss: the call goes through and overwrites it.
      this.events.emit('error', e);
      v = undefined;
      await cache.delete(key).catch(() => false);
      return undefined;
    }
    if (v === null || isLLMEntry(v)) return v ?? undefined;
    // Not an entry (another writer, an older format): removed, so the fill below can store one.
    this.events.emit(
      'error',
      new ValidationError(`cached value of ${key} is not an LLM entry; it was replaced`, {
        option: 'cache',
      }),
    );
    await cache.delete(key).catch(() => false);
    return undefined;
  }

  private replayInto(flight: Flight, entry: LLMEntry): void {
    for (const p of entryToParts(entry, { chunkChars: this.o.replay?.chunkChars ?? 0 }))
      flight.push(p);
  }

  // ---- the miss path --------------------------------------------------------------------------

  private async load(
    flight: Flight,
    req: LLMPipelineRequest,
    mode: 'generate' | 'stream',
  ): Promise<LLMEntry> {
    const signal = flight.controller.signal;
    const optimizer = this.o.optimizer;
    if (optimizer) await this.budgetGuard(optimizer);
    const grant = await this.rateLimit(req, signal);
    let lastError: unknown;
    for (const [i, call] of req.models.entries()) {
      const pushedBefore = flight.parts.length;
      flight.model = call.model;
      try {
        const entry = await this.attempt(flight, call, i, mode, signal);
        await this.afterCall(call, entry, grant);
        return entry;
      } catch (e) {
        lastError = e;
        const next = req.models[i + 1];
        // Parts already went out: the caller has seen half an answer, another model cannot
        // continue it.
        if (flight.parts.length > pushedBefore || signal.aborted || !next || !this.isFailure(e))
          throw e;
        if (statusOf(e) === 429 && this.rate) {
          const s = retryAfterOf(e);
          if (s !== undefined && s > 0) void this.rate.penalize(Math.min(s, 3600));
        }
        this.m.fallbacks.inc();
        this.events.emit('fallback', { from: call.model, to: next.model, error: e });
      }
    }
    throw lastError;
  }

  private async budgetGuard(optimizer: CostOptimizer): Promise<void> {
    // guard() reads the fleet's spend, emits budgetExceeded and throws BudgetExceededError.
    const check = async () => {
      try {
        await optimizer.guard(() => undefined)();
      } catch (e) {
        if (isBudgetExceededError(e)) this.m.budgetRefused.inc();
        throw e;
      }
    };
    if (!isTracingEnabled()) return check();
    return withSpan('azscale.llm.budget', undefined, check);
  }

  private async rateLimit(
    req: LLMPipelineRequest,
    signal: AbortSignal,
  ): Promise<RateGrant | undefined> {
    const limiter = this.rate;
    if (!limiter) return undefined;
    let estimate = this.countTokens({ request: req.request, maxOutputTokens: req.maxOutputTokens });
    if (typeof estimate !== 'number' || !Number.isFinite(estimate) || estimate < 0) {
      throw new ValidationError(
        `countTokens must return a number of tokens >= 0, received ${describeValue(estimate)}`,
        {
          option: 'countTokens',
        },
      );
    }
    estimate = Math.ceil(estimate);
    // A request larger than a whole window's budget would never fit: it takes the whole window.
    const capacity = limiter.tokenCapacity ?? limiter.tokensPerMinute;
    if (capacity !== undefined) estimate = Math.min(estimate, capacity);
    const take = () => limiter.acquire({ tokens: estimate, signal });
    const r = isTracingEnabled()
      ? await withSpan('azscale.llm.rate', { 'azscale.llm.estimated_tokens': estimate }, take)
      : await take();
    return r.grant;
  }

  private attempt(
    flight: Flight,
    call: LLMModelCall,
    index: number,
    mode: 'generate' | 'stream',
    signal: AbortSignal,
  ): Promise<LLMEntry> {
    const breaker = this.breakerFor(call, index);
    const once = (slot?: AbortSignal) => {
      const signals = [signal];
      if (slot) signals.push(slot);
      if (this.timeoutMs !== undefined) signals.push(AbortSignal.timeout(this.timeoutMs));
      const s = signals.length === 1 ? signal : AbortSignal.any(signals);
      const run = () => this.callModel(flight, call, mode, s);
      return breaker ? breaker.execute(run) : run();
    };
    const limited = () =>
      this.o.limiter ? this.o.limiter.run((slot) => once(slot), { signal }) : once();
    if (!isTracingEnabled()) return limited();
    return withSpan(
      'azscale.llm.attempt',
      {
        'gen_ai.request.model': call.model,
        'gen_ai.system': call.provider ?? 'unknown',
        'azscale.llm.fallback_index': index,
      },
      async (span) => {
        const e = await limited();
        span.setAttributes({
          'gen_ai.usage.input_tokens': e.usage?.inputTokens,
          'gen_ai.usage.output_tokens': e.usage?.outputTokens,
        });
        return e;
      },
      { kind: 'client' },
    );
  }

  private async callModel(
    flight: Flight,
    call: LLMModelCall,
    mode: 'generate' | 'stream',
    signal: AbortSignal,
  ): Promise<LLMEntry> {
    try {
      if ((mode === 'stream' && call.stream) || !call.generate) {
        const builder = new LLMEntryBuilder();
        for await (const part of (call.stream as NonNullable<LLMModelCall['stream']>)(signal)) {
          if (signal.aborted) break;
          builder.add(part);
          flight.push(part);
        }
        if (signal.aborted) throw signal.reason;
        if (!builder.finished) {
          throw new ValidationError(`the stream of ${call.model} ended without a finish part`, {
            option: 'stream',
          });
        }
        return builder.build();
      }
      const entry = await call.generate(signal);
      if (!isLLMEntry(entry)) {
        throw new ValidationError(`generate() of ${call.model} did not return an LLM entry`, {
          option: 'generate',
        });
      }
      this.replayInto(flight, entry);
      return entry;
    } catch (e) {
      if (signal.aborted && !isCancelledError(e)) {
        if (isTimeoutReason(signal.reason)) {
          throw new TimeoutError(
            `${call.model} did not answer within ${(this.timeoutMs ?? 0) / 1000} s`,
            { cause: e, context: { model: call.model } },
          );
        }
        // Aborted from here (every caller left): that, not the torn connection, is the cause.
        if (isCancelledError(signal.reason)) throw signal.reason;
      }
      throw e;
    }
  }

  private async afterCall(
    call: LLMModelCall,
    entry: LLMEntry,
    grant: RateGrant | undefined,
  ): Promise<void> {
    const usage = entry.usage;
    if (!usage) return;
    this.m.inputTokens.inc(usage.inputTokens);
    this.m.outputTokens.inc(usage.outputTokens);
    const limiter = this.rate;
    if (limiter?.tokensPerMinute !== undefined && grant) {
      // The estimate becomes the reported usage, both ways, once per grant (the provider counts
      // real tokens).
      await limiter
        .settle(grant, usage.inputTokens + usage.outputTokens)
        .catch((e) => this.events.emit('error', e));
    }
    const optimizer = this.o.optimizer;
    if (!optimizer) return;
    const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
    let dollars: number;
    try {
      const model = pricedModel(optimizer, call.model, entry.model);
      dollars = await optimizer.recordLLMUsage({
        model,
        inputTokens: usage.inputTokens - cached,
        outputTokens: usage.outputTokens,
        cachedInputTokens: cached,
        ...(this.o.category !== undefined ? { category: this.o.category } : {}),
      });
    } catch (e) {
      this.events.emit('error', e);
      return;
    }
    this.events.emit('spend', { model: call.model, usage, dollars });
  }

  /**
   * Closes the breakers and the rate limiter this pipeline made (a given cache, limiters and
   * optimizer stay open).
   */
  async close(): Promise<void> {
    const all = [...this.breakers.values()];
    this.breakers.clear();
    await Promise.all([
      ...all.map((b) => b.close()),
      this.ownsRate ? this.rate?.close() : undefined,
    ]);
  }

  /** The rate limiter in use (given, or made from the `rateLimiter` options). */
  get rateLimiter(): RateLimiter | undefined {
    return this.rate;
  }
}

function pricedModel(
  optimizer: CostOptimizer,
  requested: string,
  answered: string | undefined,
): string {
  if (answered === undefined || answered === requested) return requested;
  try {
    optimizer.estimateLLMCost({ model: requested, inputTokens: 0, outputTokens: 0 });
    return requested;
  } catch {
    return answered;
  }
}

function isTimeoutReason(reason: unknown): boolean {
  return (
    typeof reason === 'object' &&
    reason !== null &&
    (reason as { name?: unknown }).name === 'TimeoutError'
  );
}
