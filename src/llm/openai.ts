/**
 * The OpenAI chat-completions wire format (what OpenAI, vLLM, Ollama, LiteLLM and most gateways
 * speak) to and from the canonical entry: SSE parsing, chunks to parts, parts back to chunks.
 */
import { LLMProviderError, ValidationError, describeValue } from '../core/errors.js';
import type { LLMEntry, LLMFinishReason, LLMStreamPart, LLMTokenUsage } from './entry.js';

/** One `chat.completion.chunk` object (the fields azscale reads). */
export interface OpenAIChatChunk {
  /** The response id (the same in every chunk of one answer). */
  id?: string;
  /** The model that answered. */
  model?: string;
  /** Unix time in seconds when the answer was created. */
  created?: number;
  /** The choices' deltas (azscale reads only the first choice). */
  choices?: {
    /** Position of the choice. */
    index?: number;
    /** What this chunk adds to the choice. */
    delta?: {
      /** A piece of the answer text. */
      content?: string | null;
      /** A piece of the reasoning text (vLLM, DeepSeek and similar servers). */
      reasoning_content?: string | null;
      /** Pieces of tool calls; the pieces of one call share its `index`. */
      tool_calls?: {
        /** Position of the tool call the piece belongs to. */
        index?: number;
        /** The provider's call id (in the call's first piece). */
        id?: string;
        /** Pieces of the called function. */
        function?: {
          /** A piece of the function name. */
          name?: string;
          /** A piece of the JSON-encoded arguments. */
          arguments?: string;
        };
      }[];
    };
    /** The provider's finish reason (e.g. `tool_calls`), in the choice's last chunk; else `null`. */
    finish_reason?: string | null;
  }[];
  /** Token usage, in the last chunk when `stream_options.include_usage` is set. */
  usage?: OpenAIUsage | null;
  [field: string]: unknown;
}

/** OpenAI's usage object. */
export interface OpenAIUsage {
  /** Prompt tokens (cached ones included). */
  prompt_tokens?: number;
  /** Completion tokens (reasoning ones included). */
  completion_tokens?: number;
  /** Breakdown of the prompt tokens. */
  prompt_tokens_details?: {
    /** Prompt tokens served from the provider's prompt cache. */
    cached_tokens?: number;
  } | null;
  /** Breakdown of the completion tokens. */
  completion_tokens_details?: {
    /** Completion tokens spent on reasoning. */
    reasoning_tokens?: number;
  } | null;
}

/** A whole `chat.completion` object (the fields azscale reads and writes). */
export interface OpenAIChatCompletion {
  /** The response id. */
  id?: string;
  /** The object type, `chat.completion`. */
  object?: string;
  /** Unix time in seconds when the answer was created. */
  created?: number;
  /** The model that answered. */
  model?: string;
  /** The answer's choices (azscale reads only the first). */
  choices?: {
    /** Position of the choice. */
    index?: number;
    /** The answer message. */
    message?: {
      /** The author's role, `assistant`. */
      role?: string;
      /** The answer text; `null` when the model only called tools. */
      content?: string | null;
      /** The reasoning text (vLLM, DeepSeek and similar servers). */
      reasoning_content?: string | null;
      /** The tool calls the model asked for, in order. */
      tool_calls?: {
        /** The provider's call id. */
        id: string;
        /** The tool kind, `function`. */
        type?: string;
        /** The called function. */
        function: {
          /** Function name. */
          name: string;
          /** JSON-encoded arguments. */
          arguments: string;
        };
      }[];
    };
    /** The provider's finish reason (e.g. `stop`, `tool_calls`). */
    finish_reason?: string | null;
  }[];
  /** Token usage of the call. */
  usage?: OpenAIUsage | null;
  [field: string]: unknown;
}

const FINISH: Record<string, LLMFinishReason> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool-calls',
  function_call: 'tool-calls',
  content_filter: 'content-filter',
};
const FINISH_BACK: Record<string, string> = {
  stop: 'stop',
  length: 'length',
  'tool-calls': 'tool_calls',
  'content-filter': 'content_filter',
};

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
}

/** OpenAI usage to {@link LLMTokenUsage}. */
export function fromOpenAIUsage(u: OpenAIUsage | null | undefined): LLMTokenUsage | undefined {
  if (!u) return undefined;
  const input = count(u.prompt_tokens);
  const output = count(u.completion_tokens);
  if (input === undefined || output === undefined) return undefined;
  const usage: LLMTokenUsage = { inputTokens: input, outputTokens: output };
  const cached = count(u.prompt_tokens_details?.cached_tokens);
  if (cached) usage.cachedInputTokens = cached;
  const reasoning = count(u.completion_tokens_details?.reasoning_tokens);
  if (reasoning) usage.reasoningTokens = reasoning;
  return usage;
}

function toOpenAIUsage(u: LLMTokenUsage | undefined): OpenAIUsage & { total_tokens: number } {
  const input = u?.inputTokens ?? 0;
  const output = u?.outputTokens ?? 0;
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    ...(u?.cachedInputTokens
      ? { prompt_tokens_details: { cached_tokens: u.cachedInputTokens } }
      : {}),
  };
}

/**
 * The JSON payloads of a server-sent-events body, up to `data: [DONE]`. A non-2xx response
 * throws {@link LLMProviderError} with its status and `Retry-After`; a body that breaks off
 * throws one with status 0.
 */
export async function* parseSSE(response: Response): AsyncGenerator<unknown> {
  await assertOk(response);
  if (!response.body)
    throw new LLMProviderError('the provider sent no response body', { status: 0 });
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = response.body.getReader();
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new LLMProviderError('the provider stream broke off', { status: 0, cause: e });
      }
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let nl = buffer.indexOf('\n');
      while (nl !== -1) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const payload = data.join('\n');
            data = [];
            if (payload === '[DONE]') return;
            yield parsePayload(payload);
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        nl = buffer.indexOf('\n');
      }
    }
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield parsePayload(data.join('\n'));
  } finally {
    reader.releaseLock();
    await response.body.cancel().catch(() => undefined);
  }
}

function parsePayload(payload: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch (e) {
    throw new LLMProviderError('the provider sent an event that is not JSON', {
      status: 0,
      cause: e,
    });
  }
  const err = (v as { error?: { message?: unknown } } | null)?.error;
  if (err) {
    throw new LLMProviderError(
      `the provider reported an error mid-stream: ${String(err.message ?? 'unknown')}`,
      {
        status: 0,
        context: { error: err },
      },
    );
  }
  return v;
}

/** Throws {@link LLMProviderError} for a non-2xx response (reading a short error text). */
export async function assertOk(response: Response): Promise<void> {
  if (response.ok) return;
  let text = '';
  try {
    text = (await response.text()).slice(0, 300);
  } catch {
    // The error body is a courtesy; the status says enough.
  }
  const ra = Number(response.headers.get('retry-after'));
  throw new LLMProviderError(`the provider answered ${response.status}: ${text}`, {
    status: response.status,
    ...(response.headers.has('retry-after') && Number.isFinite(ra) && ra >= 0
      ? { retryAfter: ra }
      : {}),
  });
}

/**
 * Canonical parts from OpenAI chunk objects: text and reasoning deltas as they come, tool calls
 * once each is whole (at the finish), then the finish part with the usage chunk's counts.
 */
export async function* openAIChunksToParts(
  chunks: AsyncIterable<unknown>,
): AsyncGenerator<LLMStreamPart> {
  const tools: { id: string; name: string; arguments: string }[] = [];
  let finish: string | undefined;
  let usage: LLMTokenUsage | undefined;
  let model: string | undefined;
  let id: string | undefined;
  for await (const raw of chunks) {
    if (typeof raw !== 'object' || raw === null) {
      throw new ValidationError(
        `a stream chunk must be an object, received ${describeValue(raw)}`,
        {
          option: 'chunk',
        },
      );
    }
    const chunk = raw as OpenAIChatChunk;
    id ??= typeof chunk.id === 'string' ? chunk.id : undefined;
    model ??= typeof chunk.model === 'string' ? chunk.model : undefined;
    usage = fromOpenAIUsage(chunk.usage) ?? usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    const d = choice.delta;
    if (d?.reasoning_content) yield { type: 'reasoning', text: d.reasoning_content };
    if (d?.content) yield { type: 'text', text: d.content };
    for (const t of d?.tool_calls ?? []) {
      const i = t.index ?? tools.length;
      const slot = (tools[i] ??= { id: '', name: '', arguments: '' });
      if (t.id) slot.id = t.id;
      if (t.function?.name) slot.name += t.function.name;
      if (t.function?.arguments) slot.arguments += t.function.arguments;
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  if (finish === undefined) {
    throw new LLMProviderError('the provider stream ended without a finish reason', { status: 0 });
  }
  for (const t of tools) if (t) yield { type: 'tool-call', ...t };
  const part: LLMStreamPart = {
    type: 'finish',
    finishReason: FINISH[finish] ?? 'other',
    rawFinishReason: finish,
  };
  if (usage) part.usage = usage;
  if (model) part.model = model;
  if (id) part.responseId = id;
  yield part;
}

/** The canonical entry of a whole `chat.completion`. */
export function openAICompletionToEntry(completion: OpenAIChatCompletion): LLMEntry {
  const choice = completion.choices?.[0];
  if (!choice?.message) {
    throw new LLMProviderError('the provider answer has no choices[0].message', { status: 0 });
  }
  const raw = choice.finish_reason ?? 'stop';
  const entry: LLMEntry = {
    v: 1,
    text: choice.message.content ?? '',
    toolCalls: (choice.message.tool_calls ?? []).map((t) => ({
      id: t.id,
      name: t.function.name,
      arguments: t.function.arguments,
    })),
    finishReason: FINISH[raw] ?? 'other',
    rawFinishReason: raw,
    createdAt: Date.now(),
  };
  if (choice.message.reasoning_content) entry.reasoning = choice.message.reasoning_content;
  const usage = fromOpenAIUsage(completion.usage);
  if (usage) entry.usage = usage;
  if (completion.model) entry.model = completion.model;
  if (completion.id) entry.responseId = completion.id;
  return entry;
}

/** A `chat.completion` object built from an entry (how a cached answer is served whole). */
export function entryToOpenAICompletion(entry: LLMEntry, model?: string): OpenAIChatCompletion {
  return {
    id: entry.responseId ?? 'chatcmpl-azscale',
    object: 'chat.completion',
    created: Math.floor((entry.createdAt ?? Date.now()) / 1000),
    model: entry.model ?? model ?? 'unknown',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: entry.toolCalls.length > 0 && entry.text === '' ? null : entry.text,
          ...(entry.toolCalls.length > 0
            ? {
                tool_calls: entry.toolCalls.map((t) => ({
                  id: t.id,
                  type: 'function',
                  function: { name: t.name, arguments: t.arguments },
                })),
              }
            : {}),
        },
        finish_reason: entry.rawFinishReason ?? FINISH_BACK[entry.finishReason] ?? 'stop',
      },
    ],
    usage: toOpenAIUsage(entry.usage),
  };
}

/**
 * OpenAI `chat.completion.chunk` objects from canonical parts: how a cached (or shared) answer
 * is replayed to a client that expects the provider's stream. The usage chunk comes last.
 */
export async function* partsToOpenAIChunks(
  parts: AsyncIterable<LLMStreamPart>,
  fallbackModel = 'unknown',
): AsyncGenerator<OpenAIChatChunk> {
  const created = Math.floor(Date.now() / 1000);
  const base = {
    id: 'chatcmpl-azscale',
    object: 'chat.completion.chunk',
    created,
    model: fallbackModel,
  };
  let first = true;
  let toolIndex = 0;
  for await (const p of parts) {
    if (first) {
      yield {
        ...base,
        choices: [
          { index: 0, delta: { role: 'assistant', content: '' } as never, finish_reason: null },
        ],
      };
      first = false;
    }
    switch (p.type) {
      case 'text':
        yield { ...base, choices: [{ index: 0, delta: { content: p.text }, finish_reason: null }] };
        break;
      case 'reasoning':
        yield {
          ...base,
          choices: [{ index: 0, delta: { reasoning_content: p.text }, finish_reason: null }],
        };
        break;
      case 'tool-call':
        yield {
          ...base,
          choices: [
            {
              index: 0,
              delta: {
                tool_calls: [
                  {
                    index: toolIndex++,
                    id: p.id,
                    function: { name: p.name, arguments: p.arguments },
                  },
                ],
              },
              finish_reason: null,
            },
          ],
        };
        break;
      case 'finish': {
        const end = {
          ...base,
          ...(p.responseId ? { id: p.responseId } : {}),
          ...(p.model ? { model: p.model } : {}),
        };
        yield {
          ...end,
          choices: [
            {
              index: 0,
              delta: {},
              finish_reason: p.rawFinishReason ?? FINISH_BACK[p.finishReason] ?? 'stop',
            },
          ],
        };
        yield { ...end, choices: [], usage: toOpenAIUsage(p.usage) };
        break;
      }
    }
  }
}

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
