/**
 * The canonical answer: what one LLM call produced, in one shape whatever the client (AI SDK,
 * LangChain, raw OpenAI-compatible) and whether it was streamed. The cache stores this, so a
 * streamed and a whole-answer call of the same request share one entry.
 */

/** Token counts as the provider reported them (or as estimated when it did not). */
export interface LLMTokenUsage {
  /** Prompt tokens (all of them, cached ones included). */
  inputTokens: number;
  /** Completion tokens. */
  outputTokens: number;
  /** Prompt tokens the provider served from its own prompt cache. @default 0 */
  cachedInputTokens?: number;
  /** Completion tokens spent on reasoning (part of `outputTokens`). */
  reasoningTokens?: number;
}

/** One tool (function) call the model asked for. */
export interface LLMToolCall {
  /** The provider's call id. */
  id: string;
  /** Tool name. */
  name: string;
  /** JSON-encoded arguments, as the provider sent them. */
  arguments: string;
}

/**
 * Why the model stopped, in the AI SDK's unified vocabulary (OpenAI's `tool_calls` is
 * `tool-calls`, `content_filter` is `content-filter`).
 */
export type LLMFinishReason =
  | 'stop'
  | 'length'
  | 'content-filter'
  | 'tool-calls'
  | 'error'
  | 'other'
  | (string & {});

/** The canonical cache entry of one answer. */
export interface LLMEntry {
  /** Format version. */
  v: 1;
  /** The answer text (all text parts, concatenated). */
  text: string;
  /** Reasoning text, when the model streamed any. */
  reasoning?: string;
  /** Tool calls, in order. */
  toolCalls: LLMToolCall[];
  /** Why the model stopped. */
  finishReason: LLMFinishReason;
  /** The provider's own finish reason string (e.g. `tool_calls`), when it differs. */
  rawFinishReason?: string;
  /** Token usage of the call that produced the entry. */
  usage?: LLMTokenUsage;
  /** The model that answered (a fallback model when the primary failed). */
  model?: string;
  /** The provider's response id. */
  responseId?: string;
  /** Epoch milliseconds when the answer was produced. */
  createdAt?: number;
  /**
   * Adapter data that must survive a round trip (JSON only), e.g. provider metadata; `parts`
   * holds the adapter's own parts in order. `noStore: true` keeps the entry out of the cache
   * (an adapter sets it for parts with no JSON form, such as file bytes).
   */
  extra?: Record<string, unknown>;
}

/** One piece of an answer as it streams. Replays of a cached entry produce the same parts. */
export type LLMStreamPart =
  | {
      /** Part kind: a piece of the answer text. */
      type: 'text';
      /** The text piece. */
      text: string;
    }
  | {
      /** Part kind: a piece of the reasoning text. */
      type: 'reasoning';
      /** The reasoning piece. */
      text: string;
    }
  | {
      /** Part kind: one whole tool call. */
      type: 'tool-call';
      /** The provider's call id. */
      id: string;
      /** Tool name. */
      name: string;
      /** JSON-encoded arguments, as the provider sent them. */
      arguments: string;
    }
  /** An adapter's own part (e.g. an AI SDK `source`), passed through and replayed as it is. */
  | {
      /** Part kind: an adapter's own part. */
      type: 'extra';
      /** The adapter's part, as it is. */
      data: unknown;
    }
  | {
      /** Part kind: the last part; the answer is whole once it arrives. */
      type: 'finish';
      /** Why the model stopped. */
      finishReason: LLMFinishReason;
      /** The provider's own finish reason string (e.g. `tool_calls`), when it differs. */
      rawFinishReason?: string;
      /** Token usage of the call. */
      usage?: LLMTokenUsage;
      /** The model that answered. */
      model?: string;
      /** The provider's response id. */
      responseId?: string;
      /** Adapter data to keep in {@link LLMEntry.extra} (JSON only). */
      extra?: Record<string, unknown>;
    };

/** Builds an {@link LLMEntry} from stream parts as they arrive. */
export class LLMEntryBuilder {
  private text = '';
  private reasoning = '';
  private readonly toolCalls: LLMToolCall[] = [];
  private readonly extras: unknown[] = [];
  private finish: Extract<LLMStreamPart, { type: 'finish' }> | undefined;

  /** Adds one part. */
  add(part: LLMStreamPart): void {
    switch (part.type) {
      case 'text':
        this.text += part.text;
        break;
      case 'reasoning':
        this.reasoning += part.text;
        break;
      case 'tool-call':
        this.toolCalls.push({ id: part.id, name: part.name, arguments: part.arguments });
        break;
      case 'extra':
        this.extras.push(part.data);
        break;
      case 'finish':
        this.finish = part;
        break;
    }
  }

  /** True once the finish part arrived: only then is the answer whole. */
  get finished(): boolean {
    return this.finish !== undefined;
  }

  /** The entry so far (call after the finish part). */
  build(): LLMEntry {
    const f = this.finish;
    return compact({
      v: 1,
      text: this.text,
      reasoning: this.reasoning || undefined,
      toolCalls: this.toolCalls,
      finishReason: f?.finishReason ?? 'other',
      rawFinishReason: f?.rawFinishReason,
      usage: f?.usage,
      model: f?.model,
      responseId: f?.responseId,
      createdAt: Date.now(),
      extra: this.extras.length > 0 ? { ...f?.extra, parts: this.extras } : f?.extra,
    });
  }
}

function compact(entry: LLMEntry): LLMEntry {
  for (const k of Object.keys(entry) as (keyof LLMEntry)[]) {
    if (entry[k] === undefined) delete entry[k];
  }
  return entry;
}

/** Options of {@link entryToParts}. */
export interface ReplayChunking {
  /** Characters per replayed text part; `0` sends the text as one part. @default 0 */
  chunkChars?: number;
}

/** The stream parts that replay `entry` (reasoning first, then text, tool calls, extra parts, finish). */
export function entryToParts(entry: LLMEntry, chunking: ReplayChunking = {}): LLMStreamPart[] {
  const parts: LLMStreamPart[] = [];
  if (entry.reasoning) parts.push({ type: 'reasoning', text: entry.reasoning });
  const size = chunking.chunkChars ?? 0;
  if (entry.text) {
    if (size > 0) {
      for (let i = 0; i < entry.text.length; i += size) {
        parts.push({ type: 'text', text: entry.text.slice(i, i + size) });
      }
    } else parts.push({ type: 'text', text: entry.text });
  }
  for (const c of entry.toolCalls) parts.push({ type: 'tool-call', ...c });
  const extras = entry.extra?.parts;
  if (Array.isArray(extras)) for (const data of extras) parts.push({ type: 'extra', data });
  const finish: LLMStreamPart = { type: 'finish', finishReason: entry.finishReason };
  if (entry.rawFinishReason !== undefined) finish.rawFinishReason = entry.rawFinishReason;
  if (entry.usage) finish.usage = entry.usage;
  if (entry.model !== undefined) finish.model = entry.model;
  if (entry.responseId !== undefined) finish.responseId = entry.responseId;
  if (entry.extra !== undefined) {
    const { parts: _parts, ...rest } = entry.extra;
    if (Object.keys(rest).length > 0) finish.extra = rest;
  }
  parts.push(finish);
  return parts;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** True when `v` has the shape of an {@link LLMEntry} (a cached value read back is checked). */
export function isLLMEntry(v: unknown): v is LLMEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<LLMEntry>;
  if (e.v !== 1 || typeof e.text !== 'string' || typeof e.finishReason !== 'string') return false;
  if (!Array.isArray(e.toolCalls)) return false;
  for (const c of e.toolCalls) {
    if (
      typeof c !== 'object' ||
      c === null ||
      typeof c.id !== 'string' ||
      typeof c.name !== 'string' ||
      typeof c.arguments !== 'string'
    ) {
      return false;
    }
  }
  if (e.usage !== undefined) {
    if (typeof e.usage !== 'object' || e.usage === null) return false;
    if (!isCount(e.usage.inputTokens) || !isCount(e.usage.outputTokens)) return false;
  }
  return true;
}
