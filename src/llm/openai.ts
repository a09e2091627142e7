/**
 * The OpenAI chat-completions wire format (what OpenAI, vLLM, Ollama, LiteLLM and most gateways
 * speak) to and from the canonical entry: chunks to parts, parts back to chunks, whole answers.
 * SSE parsing is in `sse.ts`, the endpoint caller in `openai-model.ts`.
 */
import { LLMProviderError, ValidationError, describeValue } from '../core/errors.js';
import { tokenCount } from './count.js';
import type { LLMEntry, LLMFinishReason, LLMStreamPart, LLMTokenUsage } from './entry.js';
import type { OpenAIChatChunk, OpenAIChatCompletion, OpenAIUsage } from './openai-types.js';

export type { OpenAIChatChunk, OpenAIChatCompletion, OpenAIUsage } from './openai-types.js';

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

/** OpenAI usage to {@link LLMTokenUsage}. */
export function fromOpenAIUsage(u: OpenAIUsage | null | undefined): LLMTokenUsage | undefined {
  if (!u) return undefined;
  const input = tokenCount(u.prompt_tokens);
  const output = tokenCount(u.completion_tokens);
  if (input === undefined || output === undefined) return undefined;
  const usage: LLMTokenUsage = { inputTokens: input, outputTokens: output };
  const cached = tokenCount(u.prompt_tokens_details?.cached_tokens);
  if (cached) usage.cachedInputTokens = cached;
  const reasoning = tokenCount(u.completion_tokens_details?.reasoning_tokens);
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
