/**
 * A caller of an OpenAI-compatible `/chat/completions` endpoint in the pipeline's model shape:
 * the whole answer with `generate`, the SSE stream with `stream`.
 */
import { LLMProviderError, ValidationError } from '../core/errors.js';
import type { LLMEntry, LLMStreamPart } from './entry.js';
import { openAIChunksToParts, openAICompletionToEntry } from './openai.js';
import type { OpenAIChatCompletion } from './openai-types.js';
import { assertOk, parseSSE } from './sse.js';

/** Options of {@link openAICompatibleModel}. */
export interface OpenAICompatibleModelOptions {
  /** e.g. `https://api.openai.com/v1` (`/chat/completions` is appended). */
  baseURL: string;
  /** Sent as `Authorization: Bearer <apiKey>`. @default no Authorization header */
  apiKey?: string;
  /** Extra request headers. @default none */
  headers?: Record<string, string>;
  /** The fetch to use (e.g. azscale's pooled `HttpPool.fetch`). @default globalThis.fetch */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Provider name for spans and breaker names. @default 'openai-compatible' */
  provider?: string;
}

/**
 * An {@link LLMModelCall}-shaped caller of an OpenAI-compatible `/chat/completions` endpoint for
 * one request body: `generate` posts it whole, `stream` posts it with `stream: true` (and
 * `stream_options.include_usage`, so the usage arrives) and parses the SSE answer.
 *
 * @example
 * const openai = openAICompatibleModel({ baseURL: 'https://api.openai.com/v1', apiKey });
 * const { entry } = await llm.generate({ request: body, temperature: 0, models: [openai(body)] });
 */
export function openAICompatibleModel(options: OpenAICompatibleModelOptions) {
  if (typeof options !== 'object' || options === null || typeof options.baseURL !== 'string') {
    throw new ValidationError('baseURL must be a string URL', { option: 'baseURL' });
  }
  const url = `${options.baseURL.replace(/\/+$/, '')}/chat/completions`;
  const doFetch = options.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
  const headers = {
    'content-type': 'application/json',
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    ...options.headers,
  };
  const post = async (body: Record<string, unknown>, signal: AbortSignal): Promise<Response> => {
    try {
      return await doFetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new LLMProviderError(`the provider at ${url} is unreachable`, { status: 0, cause: e });
    }
  };
  return (body: Record<string, unknown> & { model: string }) => ({
    /** The model named in the request body. */
    model: body.model,
    /** The provider name from the options. @default 'openai-compatible' */
    provider: options.provider ?? 'openai-compatible',
    /** Posts the body without `stream` and returns the whole answer as an entry. */
    async generate(signal: AbortSignal): Promise<LLMEntry> {
      const { stream: _s, stream_options: _o, ...rest } = body;
      const res = await post(rest, signal);
      await assertOk(res);
      return openAICompletionToEntry((await res.json()) as OpenAIChatCompletion);
    },
    /** Posts the body with `stream: true` and yields the answer's parts as they arrive. */
    stream(signal: AbortSignal): AsyncIterable<LLMStreamPart> {
      const so = (body.stream_options ?? {}) as Record<string, unknown>;
      const streamBody = { ...body, stream: true, stream_options: { ...so, include_usage: true } };
      return {
        async *[Symbol.asyncIterator]() {
          const res = await post(streamBody, signal);
          yield* openAIChunksToParts(parseSSE(res));
        },
      };
    },
  });
}
