/**
 * `azscaleMiddleware`: the LLM pipeline as an AI SDK language-model middleware, for
 * `wrapLanguageModel({ model, middleware })`. It imports nothing from `ai` at run time: the
 * middleware contract is a plain object, and the same object serves AI SDK 6 (specification v3)
 * and 7 (v4), whose call options, results and stream parts agree on everything used here.
 */
import { readFileSync } from 'node:fs';
import { ValidationError, describeValue } from '../core/errors.js';
import type { DistributedCache } from '../cache/distributed-cache.js';
import type { CacheLockOptions } from '../cache/distributed-cache.js';
import type { MetricsSink } from '../core/metrics.js';
import type { CircuitBreaker, CircuitOptions } from '../resilience/circuit.js';
import type { ConcurrencyLimiter } from '../resilience/limiter.js';
import type { RateLimiter, RateLimiterOptions } from '../resilience/rate-limiter.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import {
  LLMPipeline,
  type LLMModelCall,
  type LLMPipelineRequest,
  type LLMTokenEstimateInput,
} from '../llm/pipeline.js';
import {
  type AIGenerateResultLike,
  type AIStreamPartLike,
  entryToGenerateResult,
  generateResultToEntry,
} from './convert.js';
import { aiStreamToParts, partsToAIStream } from './stream.js';
import { resolvePeer } from './peer.js';

/** The call options of an AI SDK language model (v3/v4), as far as azscale reads them. */
export interface AICallOptions {
  /** The prompt (messages). */
  prompt: unknown;
  /** Sampling temperature; only `0` is cached unless `cacheNonDeterministic`. */
  temperature?: number;
  /** Output token limit (added to the rate limiter's token estimate). */
  maxOutputTokens?: number;
  /** Aborts the call; not part of the cache key. */
  abortSignal?: AbortSignal;
  /** Extra HTTP headers; not part of the cache key. */
  headers?: Record<string, string | undefined>;
  [option: string]: unknown;
}

/** An AI SDK language model (`LanguageModelV3` of AI SDK 6, `LanguageModelV4` of AI SDK 7). */
export interface AILanguageModel {
  /** The model specification version (`v3`, `v4`). */
  readonly specificationVersion: string;
  /** The provider name (part of the cache key, `gen_ai.system`). */
  readonly provider: string;
  /** The model id (part of the cache key, names its breaker). */
  readonly modelId: string;
  /** Asks for the whole answer. */
  doGenerate(options: AICallOptions): PromiseLike<unknown>;
  /** Asks for the answer as a stream. */
  doStream(options: AICallOptions): PromiseLike<unknown>;
}

/** The middleware specification versions: `v3` for AI SDK 6, `v4` for AI SDK 7. */
export type AIMiddlewareVersion = 'v3' | 'v4';

/**
 * What {@link azscaleMiddleware} returns: a language-model middleware. Its `wrapGenerate` and
 * `wrapStream` are generic over the result types, so the object fits AI SDK 6's and 7's
 * middleware types alike.
 */
export interface AzscaleLanguageModelMiddleware<V extends AIMiddlewareVersion = 'v4'> {
  /** `v4` with AI SDK 7 installed, `v3` with AI SDK 6 (types: pass `specificationVersion`). */
  readonly specificationVersion: V;
  /** Serves `generateText`/`generateObject` through the pipeline. */
  wrapGenerate: <R>(options: {
    doGenerate: () => PromiseLike<R>;
    doStream: () => PromiseLike<unknown>;
    params: AICallOptions;
    model: AILanguageModel;
  }) => Promise<R>;
  /** Serves `streamText`/`streamObject` through the pipeline. */
  wrapStream: <S>(options: {
    doGenerate: () => PromiseLike<unknown>;
    doStream: () => PromiseLike<S>;
    params: AICallOptions;
    model: AILanguageModel;
  }) => Promise<S>;
  /** The pipeline behind it (for events: `fallback`, `spend`, `error`). */
  readonly pipeline: LLMPipeline;
}

/** Options of {@link azscaleMiddleware}. Every stage is optional. */
export interface AzscaleMiddlewareOptions<V extends AIMiddlewareVersion = 'v4'> {
  /** Where answers are cached (streamed and whole answers share one entry). @default no cache */
  cache?: DistributedCache;
  /** Seconds an answer stays cached. @default the cache's ttl */
  ttl?: number;
  /**
   * Cache requests whose temperature is not 0 too (the AI SDK sends no temperature unless you
   * set one, and such requests are not cached by default).
   * @default false
   */
  cacheNonDeterministic?: boolean;
  /**
   * Request and token budgets per minute (tokens estimated by `countTokens`, corrected with the
   * reported usage): a `RateLimiter`, or its options (the pipeline then makes one with
   * `mode: 'sliding-window'` by default).
   * @default no rate limit
   */
  rateLimiter?: RateLimiter | RateLimiterOptions;
  /** Bounds the calls in flight. @default no bound */
  limiter?: ConcurrencyLimiter;
  /**
   * A `CircuitBreaker` for the primary model, or circuit options from which one breaker per
   * model is made (with `redis`, shared by the fleet). @default no breaker
   */
  breaker?: CircuitBreaker | CircuitOptions;
  /**
   * Refuses calls once the hour's budget is spent; records spend from the result's usage.
   * @default no budget
   */
  optimizer?: CostOptimizer;
  /**
   * AI SDK models tried in order when the model before failed (429, 5xx, timeout, open breaker).
   * @default []
   */
  fallbackModels?: readonly AILanguageModel[];
  /** Seconds a failed model stays out of use (its breaker's recovery time). @default 30 */
  cooldown?: number;
  /** Seconds one model attempt may take before it counts as a timeout. @default none */
  timeout?: number;
  /** Estimated tokens of a request, for `rateLimiter`. @default prompt JSON length / 4 + maxOutputTokens */
  countTokens?: (input: LLMTokenEstimateInput) => number;
  /** The fleet-wide lock on a miss (seconds). @default { ttl: 60, wait: 60 } */
  lock?: boolean | CacheLockOptions;
  /** Pacing of replayed streams. @default sent at once */
  replay?: {
    /** Characters per replayed text part; `0` sends the text as one part. @default 0 */
    chunkChars?: number;
    /** Milliseconds between replayed parts. @default 0 */
    delayMs?: number;
  };
  /** Cache key prefix. @default 'llm:' */
  keyPrefix?: string;
  /** Spend category. @default 'llm' */
  category?: string;
  /** Where metrics go. @default noopMetrics */
  metrics?: MetricsSink;
  /**
   * An existing pipeline to go through (shared with other callers: one set of breakers and
   * in-flight calls). The pipeline options above must then be left out.
   * @default a pipeline made from these options
   */
  pipeline?: LLMPipeline;
  /**
   * The middleware version to declare. @default 'v4' when the installed `ai` is 7 or later,
   * else 'v3'
   */
  specificationVersion?: V;
}

// Call options that never change the answer: they stay out of the cache key.
const NOT_IN_KEY = new Set(['abortSignal', 'headers', 'includeRawChunks']);

let detected: AIMiddlewareVersion | undefined;
function installedVersion(): AIMiddlewareVersion {
  if (detected) return detected;
  detected = 'v4';
  const path = resolvePeer('ai');
  if (path?.endsWith('package.json')) {
    try {
      const major = Number(String(JSON.parse(readFileSync(path, 'utf8')).version).split('.')[0]);
      if (Number.isInteger(major) && major < 7) detected = 'v3';
    } catch {
      // Unreadable: the current version is the better guess.
    }
  }
  return detected;
}

function isModel(v: unknown): v is AILanguageModel {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AILanguageModel).doGenerate === 'function' &&
    typeof (v as AILanguageModel).doStream === 'function' &&
    typeof (v as AILanguageModel).modelId === 'string'
  );
}

/** The cache-key material of one call: provider, model id and every answer-changing option. */
export function aiCallKey(
  model: Pick<AILanguageModel, 'provider' | 'modelId'>,
  params: AICallOptions,
): unknown {
  const options: Record<string, unknown> = {};
  for (const k of Object.keys(params)) if (!NOT_IN_KEY.has(k)) options[k] = params[k];
  return { adapter: 'ai-sdk', provider: model.provider, modelId: model.modelId, options };
}

function modelCall(model: AILanguageModel, params: AICallOptions): LLMModelCall {
  const withSignal = (signal: AbortSignal): AICallOptions => ({
    ...params,
    abortSignal: params.abortSignal ? AbortSignal.any([params.abortSignal, signal]) : signal,
  });
  return {
    model: model.modelId,
    provider: model.provider,
    async generate(signal) {
      const r = (await model.doGenerate(withSignal(signal))) as AIGenerateResultLike;
      return generateResultToEntry(r);
    },
    stream(signal) {
      return {
        async *[Symbol.asyncIterator]() {
          const r = (await model.doStream(withSignal(signal))) as {
            stream: ReadableStream<AIStreamPartLike>;
          };
          yield* aiStreamToParts(r.stream);
        },
      };
    },
  };
}

/**
 * A language-model middleware that sends every call through azscale's LLM pipeline: the cache
 * (streamed and whole answers share one entry; a stream that fails is never stored), the budget,
 * the rate and concurrency limits, the breaker, and `fallbackModels`.
 *
 * @example
 * const model = wrapLanguageModel({
 *   model: openai('gpt-4o-mini'),
 *   middleware: azscaleMiddleware({ cache, optimizer, rateLimiter, fallbackModels: [openai('gpt-4o')] }),
 * });
 * const { text } = await generateText({ model, prompt: 'Hi', temperature: 0 });
 */
export function azscaleMiddleware<V extends AIMiddlewareVersion = 'v4'>(
  options: AzscaleMiddlewareOptions<V> = {},
): AzscaleLanguageModelMiddleware<V> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const { fallbackModels = [], specificationVersion, ...rest } = options;
  if (!Array.isArray(fallbackModels)) {
    throw new ValidationError(
      `fallbackModels must be an array of AI SDK models, received ${describeValue(fallbackModels)}`,
      {
        option: 'fallbackModels',
      },
    );
  }
  for (const [i, m] of fallbackModels.entries()) {
    if (!isModel(m)) {
      throw new ValidationError(
        `fallbackModels[${i}] must be an AI SDK language model (with doGenerate, doStream and modelId), received ${describeValue(m)}`,
        { option: `fallbackModels[${i}]` },
      );
    }
  }
  if (
    specificationVersion !== undefined &&
    specificationVersion !== 'v3' &&
    specificationVersion !== 'v4'
  ) {
    throw new ValidationError(
      `specificationVersion must be 'v3' or 'v4', received ${describeValue(specificationVersion)}`,
      {
        option: 'specificationVersion',
      },
    );
  }
  let pipeline: LLMPipeline;
  if (options.pipeline !== undefined) {
    const given = options.pipeline as Partial<LLMPipeline> | null;
    if (
      typeof given !== 'object' ||
      given === null ||
      typeof given.generate !== 'function' ||
      typeof given.stream !== 'function'
    ) {
      throw new ValidationError(
        `pipeline must be an LLMPipeline, received ${describeValue(options.pipeline)}`,
        {
          option: 'pipeline',
        },
      );
    }
    const { pipeline: _given, ...others } = rest;
    const clash = Object.keys(others).find(
      (k) => (others as Record<string, unknown>)[k] !== undefined,
    );
    if (clash) {
      throw new ValidationError(`${clash} cannot be given with pipeline: set it on the pipeline`, {
        option: clash,
      });
    }
    pipeline = options.pipeline;
  } else pipeline = new LLMPipeline(rest);
  const request = (params: AICallOptions, model: AILanguageModel): LLMPipelineRequest => {
    const req: LLMPipelineRequest = {
      request: aiCallKey(model, params),
      models: [model, ...fallbackModels].map((m) => modelCall(m, params)),
    };
    if (params.temperature !== undefined) req.temperature = params.temperature;
    if (params.maxOutputTokens !== undefined) req.maxOutputTokens = params.maxOutputTokens;
    if (params.abortSignal) req.signal = params.abortSignal;
    return req;
  };
  return {
    specificationVersion: (specificationVersion ?? installedVersion()) as V,
    pipeline,
    async wrapGenerate<R>({
      params,
      model,
    }: {
      params: AICallOptions;
      model: AILanguageModel;
    }): Promise<R> {
      const r = await pipeline.generate(request(params, model));
      return entryToGenerateResult(r.entry, r.source, r.model) as R;
    },
    async wrapStream<S>({
      params,
      model,
    }: {
      params: AICallOptions;
      model: AILanguageModel;
    }): Promise<S> {
      const s = pipeline.stream(request(params, model));
      const stream = partsToAIStream(s, () => ({ source: s.source, model: s.model }));
      return { stream } as S;
    },
  };
}
