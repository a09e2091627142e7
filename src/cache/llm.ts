import { ValidationError, describeValue } from '../core/errors.js';
import { KEY_LAYOUT, sha256Hex, validatePrefix } from '../core/keys.js';
import { assertFunction } from '../core/validate.js';
import {
  type CacheLockOptions,
  type DistributedCache,
  isDistributedCache,
} from './distributed-cache.js';
import { stableStringify } from './stable-json.js';
import type { LLMPipelineResult } from '../llm/pipeline.js';
import type { OpenAIChatChunk } from '../llm/openai.js';
import { streamThroughPipeline } from '../llm/raw-stream.js';

/**
 * A chat/completion request as sent to an LLM provider. Only `model` is required; every other
 * field (provider-specific ones too) is part of the cache key unless listed in `ignore`.
 */
export interface LLMRequest {
  /** Model id, e.g. `gpt-4o-mini`. */
  model: string;
  /** Conversation messages. */
  messages?: readonly unknown[];
  /** Tool (function) definitions. */
  tools?: readonly unknown[];
  /** Sampling temperature; `0` makes the request cacheable by default. */
  temperature?: number;
  /** Nucleus sampling. */
  top_p?: number;
  /** Output token limit. */
  max_tokens?: number;
  /** Stop sequence(s). */
  stop?: string | readonly string[] | null;
  /** Sampling seed. */
  seed?: number;
  /** Tool choice. */
  tool_choice?: unknown;
  /** Response format (JSON mode, schema). */
  response_format?: unknown;
  /** Anything else the provider accepts. */
  [field: string]: unknown;
}

/** Options of {@link llmCacheKey}. */
export interface LLMCacheKeyOptions {
  /**
   * Key prefix.
   * @default 'llm:' (the seed's layout)
   */
  prefix?: string;
  /**
   * Top-level fields left out of the key because they never change the answer.
   * @default ['user', 'metadata', 'stream', 'stream_options']
   */
  ignore?: readonly string[];
}

const DEFAULT_IGNORE: readonly string[] = ['user', 'metadata', 'stream', 'stream_options'];

function checkRequest(request: unknown): asserts request is LLMRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new ValidationError(`request must be an object, received ${describeValue(request)}`, {
      option: 'request',
    });
  }
  const model = (request as { model?: unknown }).model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new ValidationError(
      `request.model must be a non-empty string, received ${describeValue(model)}`,
      { option: 'request.model' },
    );
  }
}

/**
 * `llm:<sha256>` of the canonical JSON of the whole request: model, messages, tools and every
 * sampling parameter (temperature, top_p, max_tokens, stop, seed, tool_choice,
 * response_format, and any other field), with object keys sorted so field order never matters
 * and `undefined` fields treated as absent. Two requests share a key only if the provider sees
 * the same request.
 *
 * @example
 * llmCacheKey({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: 'hi' }] })
 * // 'llm:3b1f…'
 */
export function llmCacheKey(request: LLMRequest, options: LLMCacheKeyOptions = {}): string {
  checkRequest(request);
  const prefix =
    options.prefix === undefined ? KEY_LAYOUT.llm : validatePrefix(options.prefix, 'prefix');
  const ignore = options.ignore ?? DEFAULT_IGNORE;
  if (!Array.isArray(ignore)) {
    throw new ValidationError(
      `ignore must be an array of field names, received ${describeValue(ignore)}`,
      {
        option: 'ignore',
      },
    );
  }
  // No prototype: a request field named `__proto__` (JSON.parse makes it an own key) is data
  // like any other, not a prototype assignment that would drop it from the key.
  const fields: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(request)) {
    if (!ignore.includes(k)) fields[k] = (request as Record<string, unknown>)[k];
  }
  return prefix + sha256Hex(stableStringify(fields, 'LLM request'));
}

/** Options of {@link cachedLLMCall}. */
export interface CachedLLMCallOptions extends LLMCacheKeyOptions {
  /** Seconds to live; defaults to the cache's `ttl`. */
  ttl?: number;
  /**
   * Cache requests with a temperature other than 0 too. Off by default: a sampled answer is
   * one draw among many, and serving it again changes the behaviour the caller asked for.
   * @default false
   */
  cacheNonDeterministic?: boolean;
  /** Redis lock on a miss, so one provider call runs per cluster. */
  lock?: boolean | CacheLockOptions;
}

/** True when the request asks for greedy decoding (`temperature: 0`). */
export function isDeterministicLLMRequest(request: LLMRequest): boolean {
  return request.temperature === 0;
}

/** A streamed answer of {@link cachedLLMCall}: OpenAI `chat.completion.chunk` objects. */
export interface CachedLLMStream extends AsyncIterable<OpenAIChatChunk> {
  /** The whole answer (canonical entry) and whether it came from the cache. */
  readonly result: Promise<LLMPipelineResult>;
}

/** What a streaming `call` may return: chunk objects, or a `Response` with an SSE body. */
export type LLMStreamSource = AsyncIterable<unknown> | Response;

/**
 * Calls `call(request)` through `cache`: a hit returns the stored response, concurrent identical
 * requests share one call, and the response is stored as JSON under {@link llmCacheKey}.
 * Only deterministic requests (`temperature: 0`) are cached unless `cacheNonDeterministic` is
 * set; others go straight to `call`.
 *
 * With `stream: true` in the request, `call` returns the provider's stream (an async iterable
 * of OpenAI chunk objects, such as the OpenAI SDK's, or a `Response` with an SSE body) and
 * `cachedLLMCall` resolves to a {@link CachedLLMStream}: the answer is stored as one canonical
 * entry (text, tool calls, finish reason, usage) once the stream ends whole, and replayed as
 * chunks on a hit. A stream that fails or is abandoned mid-way is never stored. Streamed
 * entries live under their own key (the request with `stream: true`), so they never collide
 * with a whole answer of the same request.
 *
 * @example
 * const answer = await cachedLLMCall(cache, req, (r) => openai.chat.completions.create(r));
 * for await (const chunk of await cachedLLMCall(cache, { ...req, stream: true }, (r) => openai.chat.completions.create(r))) {}
 */
export async function cachedLLMCall<
  R extends LLMRequest & {
    /** Asks for a streamed answer. */
    stream: true;
  },
>(
  cache: DistributedCache,
  request: R,
  call: (request: R) => LLMStreamSource | Promise<LLMStreamSource>,
  options?: CachedLLMCallOptions,
): Promise<CachedLLMStream>;
export async function cachedLLMCall<T, R extends LLMRequest = LLMRequest>(
  cache: DistributedCache,
  request: R,
  call: (request: R) => T | Promise<T>,
  options?: CachedLLMCallOptions,
): Promise<T>;
export async function cachedLLMCall<T, R extends LLMRequest = LLMRequest>(
  cache: DistributedCache,
  request: R,
  call: (request: R) => T | Promise<T>,
  options: CachedLLMCallOptions = {},
): Promise<T | CachedLLMStream> {
  if (!isDistributedCache(cache)) {
    throw new ValidationError(
      `cache must be a DistributedCache, received ${describeValue(cache)}`,
      {
        option: 'cache',
      },
    );
  }
  checkRequest(request);
  assertFunction(call, 'call');
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const force = options.cacheNonDeterministic ?? false;
  if (typeof force !== 'boolean') {
    throw new ValidationError(
      `cacheNonDeterministic must be a boolean, received ${describeValue(force)}`,
      { option: 'cacheNonDeterministic' },
    );
  }
  const key = llmCacheKey(request, options);
  if (request.stream === true) {
    return streamThroughPipeline(
      cache,
      request,
      key,
      (r) => call(r as R) as LLMStreamSource,
      options,
    );
  }
  if (!force && !isDeterministicLLMRequest(request)) return call(request);
  return cache.getOrSetJSON<T>(key, () => call(request), {
    ...(options.ttl !== undefined ? { ttl: options.ttl } : {}),
    ...(options.lock !== undefined ? { lock: options.lock } : {}),
  });
}
