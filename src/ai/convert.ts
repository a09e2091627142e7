/**
 * AI SDK language-model results (specification v3, AI SDK 6, and v4, AI SDK 7: the same shapes
 * for everything read here) to and from the canonical entry: usage, finish reasons and whole
 * generate results. Streams are in `stream.ts`.
 */
import type { LLMEntry, LLMTokenUsage } from '../llm/entry.js';
import { tokenCount } from '../llm/count.js';
import type { LLMAnswerSource } from '../llm/flight.js';

/** AI SDK usage (v3/v4): nested input/output token counts. */
export interface AIUsage {
  /** Prompt tokens. */
  inputTokens: {
    /** Every prompt token. */
    total: number | undefined;
    /** Prompt tokens not served from the provider's prompt cache. */
    noCache: number | undefined;
    /** Prompt tokens read from the provider's prompt cache. */
    cacheRead: number | undefined;
    /** Prompt tokens written to the provider's prompt cache. */
    cacheWrite: number | undefined;
  };
  /** Completion tokens. */
  outputTokens: {
    /** Every completion token. */
    total: number | undefined;
    /** Completion tokens of the visible text. */
    text: number | undefined;
    /** Completion tokens spent on reasoning. */
    reasoning: number | undefined;
  };
  /** The provider's own usage object, as it sent it. */
  raw?: unknown;
}

/** The parts of an AI SDK generate result azscale reads or writes. */
export interface AIGenerateResultLike {
  /** The answer's content parts (`text`, `reasoning`, `tool-call`, `source`, `file`, ...). */
  content: {
    /** The part's kind. */
    type: string;
    [field: string]: unknown;
  }[];
  /** Why the answer ended: v3/v4 `{ unified, raw }`, or a plain string from older providers. */
  finishReason:
    | {
        /** The AI SDK's finish reason (`stop`, `length`, `tool-calls`, ...). */
        unified: string;
        /** The provider's own finish reason. */
        raw: string | undefined;
      }
    | string;
  /** Token counts: v3/v4 nested, or older flat numbers. */
  usage:
    | AIUsage
    | {
        /** Prompt tokens. */
        inputTokens?: number;
        /** Completion tokens. */
        outputTokens?: number;
      };
  /** Provider-specific metadata; azscale adds `azscale: { source, model }`. */
  providerMetadata?: Record<string, Record<string, unknown>>;
  /** Response metadata. */
  response?: {
    /** The provider's response id. */
    id?: string;
    /** The model that answered. */
    modelId?: string;
    /** When the provider answered. */
    timestamp?: Date;
    [field: string]: unknown;
  };
  /** Call warnings from the provider. */
  warnings?: unknown[];
  [field: string]: unknown;
}

/** An AI SDK stream part (the fields azscale reads). */
export interface AIStreamPartLike {
  /** The part's kind (`text-delta`, `tool-call`, `finish`, ...). */
  type: string;
  [field: string]: unknown;
}

/** AI SDK usage (v3/v4 nested, or the older flat numbers) to {@link LLMTokenUsage}. */
export function fromAIUsage(u: unknown): LLMTokenUsage | undefined {
  if (typeof u !== 'object' || u === null) return undefined;
  const x = u as Record<string, unknown>;
  const inp = x.inputTokens;
  const out = x.outputTokens;
  let input: number | undefined;
  let output: number | undefined;
  let cached: number | undefined;
  let reasoning: number | undefined;
  if (typeof inp === 'object' && inp !== null) {
    const i = inp as Record<string, unknown>;
    input = tokenCount(i.total);
    cached = tokenCount(i.cacheRead);
  } else input = tokenCount(inp);
  if (typeof out === 'object' && out !== null) {
    const o = out as Record<string, unknown>;
    output = tokenCount(o.total);
    reasoning = tokenCount(o.reasoning);
  } else output = tokenCount(out);
  if (input === undefined && output === undefined) return undefined;
  const usage: LLMTokenUsage = { inputTokens: input ?? 0, outputTokens: output ?? 0 };
  if (cached) usage.cachedInputTokens = cached;
  if (reasoning) usage.reasoningTokens = reasoning;
  return usage;
}

/** {@link LLMTokenUsage} to AI SDK v3/v4 usage. */
export function toAIUsage(u: LLMTokenUsage | undefined): AIUsage {
  if (!u) {
    return {
      inputTokens: {
        total: undefined,
        noCache: undefined,
        cacheRead: undefined,
        cacheWrite: undefined,
      },
      outputTokens: { total: undefined, text: undefined, reasoning: undefined },
    };
  }
  const cached = u.cachedInputTokens ?? 0;
  const reasoning = u.reasoningTokens ?? 0;
  return {
    inputTokens: {
      total: u.inputTokens,
      noCache: u.inputTokens - cached,
      cacheRead: u.cachedInputTokens,
      cacheWrite: undefined,
    },
    outputTokens: {
      total: u.outputTokens,
      text: u.outputTokens - reasoning,
      reasoning: u.reasoningTokens,
    },
  };
}

/** A finish reason in the v3/v4 `{ unified, raw }` shape (older providers send a string). @internal */
export function finishOf(f: unknown): { unified: string; raw: string | undefined } {
  if (typeof f === 'string') return { unified: f, raw: f };
  if (typeof f === 'object' && f !== null) {
    const o = f as { unified?: unknown; raw?: unknown };
    return {
      unified: typeof o.unified === 'string' ? o.unified : 'other',
      raw: typeof o.raw === 'string' ? o.raw : undefined,
    };
  }
  return { unified: 'other', raw: undefined };
}

/**
 * True when `v` holds bytes or other values JSON cannot carry back (such parts are not stored).
 * @internal
 */
export function hasBinary(v: unknown, depth = 0): boolean {
  if (depth > 8 || v === null || typeof v !== 'object') return false;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof URL) return true;
  if (v instanceof Date) return false;
  for (const x of Array.isArray(v) ? v : Object.values(v)) if (hasBinary(x, depth + 1)) return true;
  return false;
}

/**
 * What of a result must survive a round trip through the cache: the provider metadata (without
 * azscale's own) and the parts the entry does not model. @internal
 */
export function metaExtra(
  providerMetadata: unknown,
  extras: unknown[],
): Record<string, unknown> | undefined {
  const extra: Record<string, unknown> = {};
  if (providerMetadata && typeof providerMetadata === 'object') {
    const { azscale: _own, ...rest } = providerMetadata as Record<string, unknown>;
    if (Object.keys(rest).length > 0) extra.providerMetadata = rest;
  }
  if (extras.length > 0) {
    extra.parts = extras;
    if (hasBinary(extras)) extra.noStore = true;
  }
  if (hasBinary(extra.providerMetadata)) extra.noStore = true;
  return Object.keys(extra).length > 0 ? extra : undefined;
}

/** The canonical entry of an AI SDK generate result. */
export function generateResultToEntry(result: AIGenerateResultLike): LLMEntry {
  let text = '';
  let reasoning = '';
  const toolCalls: LLMEntry['toolCalls'] = [];
  const extras: unknown[] = [];
  for (const part of result.content ?? []) {
    if (part.type === 'text') text += String(part.text ?? '');
    else if (part.type === 'reasoning') reasoning += String(part.text ?? '');
    else if (part.type === 'tool-call' && !part.providerExecuted) {
      toolCalls.push({
        id: String(part.toolCallId),
        name: String(part.toolName),
        arguments: typeof part.input === 'string' ? part.input : JSON.stringify(part.input ?? {}),
      });
    } else extras.push(part);
  }
  const f = finishOf(result.finishReason);
  const entry: LLMEntry = {
    v: 1,
    text,
    toolCalls,
    finishReason: f.unified,
    createdAt:
      result.response?.timestamp instanceof Date ? result.response.timestamp.getTime() : Date.now(),
  };
  if (reasoning) entry.reasoning = reasoning;
  if (f.raw !== undefined) entry.rawFinishReason = f.raw;
  const usage = fromAIUsage(result.usage);
  if (usage) entry.usage = usage;
  if (typeof result.response?.modelId === 'string') entry.model = result.response.modelId;
  if (typeof result.response?.id === 'string') entry.responseId = result.response.id;
  const extra = metaExtra(result.providerMetadata, extras);
  if (extra) entry.extra = extra;
  return entry;
}

/** The result's provider metadata with `azscale: { source, model }` added. @internal */
export function azscaleMeta(
  providerMetadata: unknown,
  source: LLMAnswerSource,
  model: string | undefined,
): Record<string, Record<string, unknown>> {
  const own: Record<string, unknown> = model ? { source, model } : { source };
  if (!providerMetadata || typeof providerMetadata !== 'object') return { azscale: own };
  return { ...(providerMetadata as Record<string, Record<string, unknown>>), azscale: own };
}

/**
 * An AI SDK generate result from an entry. `providerMetadata.azscale.source` says where it came
 * from (`cache`, `peer`, `model`, `bypass`).
 */
export function entryToGenerateResult(
  entry: LLMEntry,
  source: LLMAnswerSource,
  answeredBy: string | undefined,
): AIGenerateResultLike {
  const content: AIGenerateResultLike['content'] = [];
  if (entry.reasoning) content.push({ type: 'reasoning', text: entry.reasoning });
  if (entry.text) content.push({ type: 'text', text: entry.text });
  for (const c of entry.toolCalls) {
    content.push({ type: 'tool-call', toolCallId: c.id, toolName: c.name, input: c.arguments });
  }
  const extras = entry.extra?.parts;
  if (Array.isArray(extras)) content.push(...(extras as AIGenerateResultLike['content']));
  const response: NonNullable<AIGenerateResultLike['response']> = {
    timestamp: new Date(entry.createdAt ?? Date.now()),
  };
  if (entry.responseId) response.id = entry.responseId;
  if (entry.model) response.modelId = entry.model;
  return {
    content,
    finishReason: { unified: entry.finishReason, raw: entry.rawFinishReason ?? entry.finishReason },
    usage: toAIUsage(entry.usage),
    providerMetadata: azscaleMeta(entry.extra?.providerMetadata, source, answeredBy),
    response,
    warnings: [],
  };
}
