/**
 * AI SDK streams (v3/v4 stream parts) to and from canonical parts. A replayed answer is handed to
 * the AI SDK in as few steps as its parts arrive in: every part already in goes out in one pull,
 * so a cache hit costs the SDK one stream turn, not one per part.
 */
import type { LLMStreamPart } from '../llm/entry.js';
import { type LLMAnswerSource, PART_BATCHES } from '../llm/flight.js';
import {
  type AIStreamPartLike,
  azscaleMeta,
  finishOf,
  fromAIUsage,
  hasBinary,
  metaExtra,
  toAIUsage,
} from './convert.js';

/**
 * Canonical parts from an AI SDK stream. An `error` part fails the stream (so the answer is not
 * cached); parts azscale does not model are passed on as `extra`.
 */
export async function* aiStreamToParts(
  stream: ReadableStream<AIStreamPartLike>,
): AsyncGenerator<LLMStreamPart> {
  const reader = stream.getReader();
  let id: string | undefined;
  let modelId: string | undefined;
  const extras: unknown[] = [];
  try {
    for (;;) {
      const { done, value: p } = await reader.read();
      if (done) return;
      switch (p.type) {
        case 'text-delta':
          yield { type: 'text', text: String(p.delta ?? p.textDelta ?? '') };
          break;
        case 'reasoning-delta':
          yield { type: 'reasoning', text: String(p.delta ?? '') };
          break;
        case 'tool-call':
          if (p.providerExecuted) {
            extras.push(p);
            yield { type: 'extra', data: p };
          } else {
            yield {
              type: 'tool-call',
              id: String(p.toolCallId),
              name: String(p.toolName),
              arguments: typeof p.input === 'string' ? p.input : JSON.stringify(p.input ?? {}),
            };
          }
          break;
        case 'response-metadata':
          if (typeof p.id === 'string') id = p.id;
          if (typeof p.modelId === 'string') modelId = p.modelId;
          break;
        case 'error':
          throw p.error ?? new Error('the model stream reported an error');
        case 'finish': {
          const f = finishOf(p.finishReason);
          const part: LLMStreamPart = { type: 'finish', finishReason: f.unified };
          if (f.raw !== undefined) part.rawFinishReason = f.raw;
          const usage = fromAIUsage(p.usage);
          if (usage) part.usage = usage;
          if (modelId) part.model = modelId;
          if (id) part.responseId = id;
          const extra = metaExtra(p.providerMetadata, []);
          if (extra) part.extra = extra;
          if (hasBinary(extras)) part.extra = { ...part.extra, noStore: true };
          yield part;
          break;
        }
        case 'source':
        case 'file':
        case 'tool-result':
        case 'tool-approval-request':
        case 'custom':
          extras.push(p);
          yield { type: 'extra', data: p };
          break;
        default:
          // stream-start, text-start/end, tool-input-*, raw, ping: framing that replays rebuild.
          break;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

type Batches = AsyncIterator<readonly LLMStreamPart[]>;

// A pipeline stream hands its parts on in batches; any other iterable one part at a time.
function batchesOf(parts: AsyncIterable<LLMStreamPart>): Batches {
  const own = (parts as { [PART_BATCHES]?: () => Batches })[PART_BATCHES];
  if (typeof own === 'function') return own.call(parts);
  const it = parts[Symbol.asyncIterator]();
  return {
    async next() {
      const r = await it.next();
      return r.done ? { done: true, value: undefined } : { done: false, value: [r.value] };
    },
    async return(value?: unknown) {
      await it.return?.(value);
      return { done: true, value: undefined };
    },
  };
}

/** An AI SDK stream (v3/v4 parts) from canonical parts. */
export function partsToAIStream(
  parts: AsyncIterable<LLMStreamPart>,
  meta: () => { source: LLMAnswerSource; model: string | undefined },
): ReadableStream<AIStreamPartLike> {
  const it = batchesOf(parts);
  let open: 'text' | 'reasoning' | undefined;
  let blocks = 0;
  type Controller = ReadableStreamDefaultController<AIStreamPartLike>;
  const close = (c: Controller) => {
    if (open === 'text') c.enqueue({ type: 'text-end', id: `txt-${blocks}` });
    if (open === 'reasoning') c.enqueue({ type: 'reasoning-end', id: `rsn-${blocks}` });
    open = undefined;
  };
  const emit = (c: Controller, p: LLMStreamPart) => {
    switch (p.type) {
      case 'text':
        if (open !== 'text') {
          close(c);
          open = 'text';
          blocks++;
          c.enqueue({ type: 'text-start', id: `txt-${blocks}` });
        }
        c.enqueue({ type: 'text-delta', id: `txt-${blocks}`, delta: p.text });
        break;
      case 'reasoning':
        if (open !== 'reasoning') {
          close(c);
          open = 'reasoning';
          blocks++;
          c.enqueue({ type: 'reasoning-start', id: `rsn-${blocks}` });
        }
        c.enqueue({ type: 'reasoning-delta', id: `rsn-${blocks}`, delta: p.text });
        break;
      case 'tool-call':
        close(c);
        c.enqueue({ type: 'tool-input-start', id: p.id, toolName: p.name });
        c.enqueue({ type: 'tool-input-delta', id: p.id, delta: p.arguments });
        c.enqueue({ type: 'tool-input-end', id: p.id });
        c.enqueue({ type: 'tool-call', toolCallId: p.id, toolName: p.name, input: p.arguments });
        break;
      case 'extra':
        close(c);
        c.enqueue(p.data as AIStreamPartLike);
        break;
      case 'finish': {
        close(c);
        if (p.responseId || p.model) {
          const m: AIStreamPartLike = { type: 'response-metadata' };
          if (p.responseId) m.id = p.responseId;
          if (p.model) m.modelId = p.model;
          c.enqueue(m);
        }
        const m = meta();
        c.enqueue({
          type: 'finish',
          finishReason: { unified: p.finishReason, raw: p.rawFinishReason ?? p.finishReason },
          usage: toAIUsage(p.usage),
          providerMetadata: azscaleMeta(p.extra?.providerMetadata, m.source, m.model),
        });
        break;
      }
    }
  };
  return new ReadableStream<AIStreamPartLike>({
    start(c) {
      c.enqueue({ type: 'stream-start', warnings: [] });
    },
    async pull(c) {
      let r: IteratorResult<readonly LLMStreamPart[]>;
      try {
        r = await it.next();
      } catch (e) {
        c.error(e);
        return;
      }
      if (r.done) {
        close(c);
        c.close();
        return;
      }
      for (const p of r.value) emit(c, p);
    },
    async cancel(reason) {
      await it.return?.(reason);
    },
  });
}
