/**
 * The streaming path of `cachedLLMCall`: a raw OpenAI-compatible stream through the pipeline's
 * cache stage, stored as the canonical entry and replayed as OpenAI chunks.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { KEY_LAYOUT } from '../core/keys.js';
import type { CacheLockOptions, DistributedCache } from '../cache/distributed-cache.js';
import { openAIChunksToParts, partsToOpenAIChunks } from './openai.js';
import { parseSSE } from './sse.js';
import type { OpenAIChatChunk } from './openai.js';
import { LLMPipeline, type LLMPipelineResult } from './pipeline.js';

interface RawStreamOptions {
  ttl?: number;
  cacheNonDeterministic?: boolean;
  lock?: boolean | CacheLockOptions;
  prefix?: string;
}

// One pipeline per cache and option set, so concurrent identical streams share one call.
const pipelines = new WeakMap<DistributedCache, Map<string, LLMPipeline>>();

function pipelineFor(cache: DistributedCache, o: RawStreamOptions): LLMPipeline {
  let byOptions = pipelines.get(cache);
  if (!byOptions) {
    byOptions = new Map();
    pipelines.set(cache, byOptions);
  }
  const id = JSON.stringify([o.ttl, o.cacheNonDeterministic, o.lock, o.prefix]);
  let p = byOptions.get(id);
  if (!p) {
    p = new LLMPipeline({
      cache,
      ...(o.ttl !== undefined ? { ttl: o.ttl } : {}),
      ...(o.cacheNonDeterministic !== undefined
        ? { cacheNonDeterministic: o.cacheNonDeterministic }
        : {}),
      ...(o.lock !== undefined ? { lock: o.lock } : {}),
      keyPrefix: o.prefix ?? KEY_LAYOUT.llm,
    });
    byOptions.set(id, p);
  }
  return p;
}

async function* chunksOf(source: unknown): AsyncGenerator<unknown> {
  if (typeof Response !== 'undefined' && source instanceof Response) {
    yield* parseSSE(source);
    return;
  }
  if (
    source !== null &&
    typeof source === 'object' &&
    typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  ) {
    yield* source as AsyncIterable<unknown>;
    return;
  }
  throw new ValidationError(
    `a streaming call must return an async iterable of chunks or a Response, received ${describeValue(source)}`,
    { option: 'call' },
  );
}

/** @internal */
export async function streamThroughPipeline<R extends { model: string; temperature?: number }>(
  cache: DistributedCache,
  request: R,
  wholeKey: string,
  call: (request: R) => unknown,
  options: RawStreamOptions,
): Promise<AsyncIterable<OpenAIChatChunk> & { result: Promise<LLMPipelineResult> }> {
  const pipeline = pipelineFor(cache, options);
  const s = pipeline.stream({
    // The whole-answer key plus a marker: a streamed entry never lands on a whole answer's key.
    request: { canonical: 1, of: wholeKey },
    ...(typeof request.temperature === 'number' ? { temperature: request.temperature } : {}),
    models: [
      {
        model: request.model,
        stream: () => ({
          async *[Symbol.asyncIterator]() {
            yield* openAIChunksToParts(chunksOf(await call(request)));
          },
        }),
      },
    ],
  });
  return {
    result: s.result,
    [Symbol.asyncIterator]: () => partsToOpenAIChunks(s, request.model),
  };
}
