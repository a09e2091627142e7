/**
 * The public shapes of the LLM pipeline: its options, one request, what a request returns, the
 * models it may call, and its events. Kept apart from the class so the adapters and the miss path
 * can name them without importing the pipeline.
 */
import type { CacheLockOptions, DistributedCache } from '../cache/distributed-cache.js';
import type { MetricsSink } from '../core/metrics.js';
import type { CircuitBreaker, CircuitOptions } from '../resilience/circuit.js';
import type { ConcurrencyLimiter } from '../resilience/limiter.js';
import type { RateLimiter, RateLimiterOptions } from '../resilience/rate-limiter.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import type { LLMEntry, LLMStreamPart, LLMTokenUsage } from './entry.js';
import type { LLMAnswerSource } from './flight.js';

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
