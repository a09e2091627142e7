/**
 * The LLM pipeline through the AI SDK, against the hand-written caching middleware of the AI SDK
 * docs ("Caching Responses", `JSON.stringify(params)` as the key, the result stored as JSON), over
 * the same Redis and the same stand-in provider. Cache hits only: the model is called once per
 * side before timing. AI SDK 7 on Node >= 22, AI SDK 6 (`ai6`) on Node 20 or with
 * `AZS_BENCH_AI_SDK=6`.
 */
import { Redis } from 'ioredis';
import { azscaleMiddleware } from '../src/ai/index.js';
import { DistributedCache } from '../src/cache/index.js';
import { LLMPipeline, openAICompatibleModel } from '../src/llm/index.js';
import { startLLMStandin } from '../test/harness/llm-standin.js';
import { type BenchRow, type BenchSuite, type Measurement, compare, measure } from './lib.js';

type Params = Record<string, unknown>;
type Parts = { type: string; timestamp?: string | Date }[];
// The two majors' types differ in detail; the bench drives both through one loose shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = any;

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const SDK_MAJOR = NODE_MAJOR >= 22 && process.env.AZS_BENCH_AI_SDK !== '6' ? 7 : 6;
const SPEC = SDK_MAJOR === 7 ? ('v4' as const) : ('v3' as const);

async function loadSdk(): Promise<{ ai: Loose; createOpenAICompatible: Loose }> {
  if (SDK_MAJOR === 7) {
    const [ai, oc] = await Promise.all([import('ai'), import('@ai-sdk/openai-compatible')]);
    return { ai, createOpenAICompatible: oc.createOpenAICompatible };
  }
  const [ai, oc] = await Promise.all([import('ai6'), import('ai-sdk-openai-compatible-v2')]);
  return { ai, createOpenAICompatible: oc.createOpenAICompatible };
}

/** The AI SDK docs' caching middleware, on ioredis (their example uses Upstash's client). */
function docsCacheMiddleware(redis: Redis, prefix: string, simulateReadableStream: Loose) {
  return {
    specificationVersion: SPEC,
    wrapGenerate: async <R>({
      doGenerate,
      params,
    }: {
      doGenerate: () => PromiseLike<R>;
      params: Params;
    }) => {
      const cacheKey = prefix + JSON.stringify(params);
      const text = await redis.get(cacheKey);
      if (text !== null) {
        const cached = JSON.parse(text);
        return {
          ...cached,
          response: {
            ...cached.response,
            timestamp: cached?.response?.timestamp
              ? new Date(cached.response.timestamp)
              : undefined,
          },
        } as R;
      }
      const result = await doGenerate();
      void redis.set(cacheKey, JSON.stringify(result));
      return result;
    },
    wrapStream: async <S>({
      doStream,
      params,
    }: {
      doStream: () => PromiseLike<S>;
      params: Params;
    }) => {
      const cacheKey = prefix + JSON.stringify(params);
      const text = await redis.get(cacheKey);
      if (text !== null) {
        const chunks = (JSON.parse(text) as Parts).map((p) =>
          p.type === 'response-metadata' && p.timestamp
            ? { ...p, timestamp: new Date(p.timestamp) }
            : p,
        );
        return {
          stream: simulateReadableStream({ initialDelayInMs: 0, chunkDelayInMs: 10, chunks }),
        } as S;
      }
      const { stream, ...rest } = (await doStream()) as { stream: ReadableStream<unknown> };
      const full: unknown[] = [];
      const transform = new TransformStream({
        transform(chunk, controller) {
          full.push(chunk);
          controller.enqueue(chunk);
        },
        flush() {
          void redis.set(cacheKey, JSON.stringify(full));
        },
      });
      return { stream: stream.pipeThrough(transform), ...rest } as S;
    },
  };
}

/** Times `a` and `b` alternately, one call each, `n` times; medians and the median difference. */
async function interleaved(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  n: number,
): Promise<{ ours: Measurement; theirs: Measurement; addedMs: number }> {
  const ta: number[] = [];
  const tb: number[] = [];
  const diff: number[] = [];
  for (let i = 0; i < n + n / 10; i++) {
    let s = performance.now();
    await a();
    const x = performance.now() - s;
    s = performance.now();
    await b();
    const y = performance.now() - s;
    if (i < n / 10) continue; // warm-up
    ta.push(x);
    tb.push(y);
    diff.push(x - y);
  }
  const stats = (v: number[]): Measurement => {
    const sorted = [...v].sort((p, q) => p - q);
    const pct = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
    const mean = v.reduce((m, t) => m + t, 0) / v.length;
    return {
      opsPerSec: 1000 / mean,
      meanMs: mean,
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      iterations: v.length,
    };
  };
  return { ours: stats(ta), theirs: stats(tb), addedMs: stats(diff).p50Ms };
}

/**
 * A model that streams one fixed answer from memory (streamText's own cost, no I/O); with
 * `before`, after awaiting it (one raw ioredis GET: the floor any Redis-backed hit pays).
 */
function plainModel(text: string, before?: () => Promise<unknown>) {
  const usage = {
    inputTokens: { total: 5, noCache: 5, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 5, text: 5, reasoning: undefined },
  };
  return {
    specificationVersion: SPEC,
    provider: 'plain',
    modelId: 'plain',
    supportedUrls: {},
    doGenerate: async () => {
      throw new Error('stream only');
    },
    doStream: async () => ({
      stream: new ReadableStream({
        async start(c) {
          if (before) await before();
          c.enqueue({ type: 'stream-start', warnings: [] });
          c.enqueue({ type: 'text-start', id: 't' });
          c.enqueue({ type: 'text-delta', id: 't', delta: text });
          c.enqueue({ type: 'text-end', id: 't' });
          c.enqueue({ type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage });
          c.close();
        },
      }),
    }),
  };
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const { ai, createOpenAICompatible } = await loadSdk();
  const { generateText, streamText, simulateReadableStream } = ai;
  const wrap = ai.wrapLanguageModel;
  const sdk = `AI SDK ${SDK_MAJOR}`;
  const standin = await startLLMStandin();
  const prefix = `azs-bench-llm-${Date.now()}:`;
  const redis = new Redis(ctx.redisUrl);
  const cache = new DistributedCache({ redis: ctx.redisUrl, prefix });
  // The same, with the cache's in-process tier: a hit read once from Redis is then served from
  // memory (writes elsewhere still evict it through Redis pub/sub).
  const localCache = new DistributedCache({
    redis: ctx.redisUrl,
    prefix: `${prefix}local:`,
    local: true,
  });
  const middleware = azscaleMiddleware({ cache, specificationVersion: SPEC });
  const localMiddleware = azscaleMiddleware({ cache: localCache, specificationVersion: SPEC });
  try {
    const provider = createOpenAICompatible({
      name: 'standin',
      baseURL: standin.baseURL,
      apiKey: 'k',
      includeUsage: true,
    });
    const ours = wrap({ model: provider('bench-model'), middleware });
    const oursLocal = wrap({ model: provider('bench-model'), middleware: localMiddleware });
    const theirs = wrap({
      model: provider('bench-model'),
      middleware: docsCacheMiddleware(redis, `${prefix}docs:`, simulateReadableStream),
    });
    const call = { prompt: 'What does a cache hit cost?', temperature: 0 };
    await generateText({ model: ours, ...call });
    await generateText({ model: theirs, ...call });
    rows.push(
      await compare({
        group: 'llm',
        case: `generateText cache hit (redis), wrapLanguageModel, ${sdk}`,
        ours: () => generateText({ model: ours, ...call }),
        theirsLabel: 'AI SDK docs caching middleware (ioredis)',
        theirs: () => generateText({ model: theirs, ...call }),
        iterations: 1000,
        rounds: 3,
        maxRatio: 1.3,
      }),
    );

    // Time to the first replayed chunk on a hit: streamText's first text delta, both sides.
    const first = (model: typeof ours) => async () => {
      const r = streamText({ model, ...call });
      for await (const _ of r.textStream) break;
    };
    await first(ours)();
    await first(theirs)();
    // streamText's own cost: a model that streams the same answer from memory, no middleware.
    // What the middleware adds to the first chunk is the difference to this.
    const answer = ((await generateText({ model: ours, ...call })) as { text: string }).text;
    const plain = plainModel(answer);
    await redis.set(`${prefix}floor`, answer);
    const floor = plainModel(answer, () => redis.get(`${prefix}floor`));
    await first(oursLocal)();
    await first(oursLocal)();
    // Interleaved one call each, medians: on a shared, loaded machine whole-run means of two
    // separate runs differ by more than the thing measured.
    const bare = await interleaved(first(ours), first(plain), 1000);
    rows.push({
      group: 'llm',
      case: `streamText hit: time to first text chunk (median), middleware vs none, ${sdk}`,
      ours: bare.ours,
      theirsLabel: 'streamText over an in-memory model (no middleware, no Redis)',
      theirs: bare.theirs,
      ratio: bare.ours.p50Ms / bare.theirs.p50Ms,
      target: `<= 2 ms added (median ${bare.addedMs.toFixed(2)} ms)`,
      met: bare.addedMs <= 2,
    });
    // The floor under the row above: what one raw GET to the same Redis adds to the same
    // in-memory model. On a loaded machine the wait for Redis's answer is most of the row above.
    const raw = await interleaved(first(floor), first(plain), 1000);
    rows.push({
      group: 'llm',
      case: `floor: streamText over the in-memory model after one raw ioredis GET (median), ${sdk}`,
      ours: raw.ours,
      theirsLabel: 'streamText over an in-memory model (no middleware, no Redis)',
      theirs: raw.theirs,
      ratio: raw.ours.p50Ms / raw.theirs.p50Ms,
      target: `(informative: ${raw.addedMs.toFixed(2)} ms added)`,
    });
    const local = await interleaved(first(oursLocal), first(plain), 1000);
    rows.push({
      group: 'llm',
      case: `streamText hit from the in-process tier (local: true): first text chunk (median), ${sdk}`,
      ours: local.ours,
      theirsLabel: 'streamText over an in-memory model (no middleware, no Redis)',
      theirs: local.theirs,
      ratio: local.ours.p50Ms / local.theirs.p50Ms,
      target: `<= 2 ms added (median ${local.addedMs.toFixed(2)} ms)`,
      met: local.addedMs <= 2,
    });
    const ttfc = await compare({
      group: 'llm',
      case: 'streamText hit: time to first text chunk',
      ours: first(ours),
      theirsLabel: 'AI SDK docs caching middleware (ioredis)',
      theirs: first(theirs),
      iterations: 500,
      rounds: 3,
    });
    rows.push(ttfc);

    // The same at the middleware boundary (what azscale adds): wrapStream on a hit to its first
    // replayed part, without streamText's own machinery.
    const inner = provider('bench-model');
    const params = {
      prompt: [
        { role: 'user' as const, content: [{ type: 'text' as const, text: 'boundary hit' }] },
      ],
      temperature: 0,
    };
    const firstPartOf = async (mw: { wrapStream: (o: never) => Promise<unknown> }) => {
      const r = (await mw.wrapStream({
        doGenerate: () => inner.doGenerate(params),
        doStream: () => inner.doStream(params),
        params,
        model: inner,
      } as never)) as { stream: ReadableStream<{ type: string }> };
      const reader = r.stream.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || value.type === 'text-delta') break;
      }
      await reader.cancel();
    };
    const docs = docsCacheMiddleware(redis, `${prefix}docs:`, simulateReadableStream);
    // The first call is a miss and must be read to its end to be stored: a stream abandoned
    // mid-way is not cached (so a warm-up that stopped at the first part measured misses).
    const fill = async (mw: { wrapStream: (o: never) => Promise<unknown> }) => {
      const r = (await mw.wrapStream({
        doGenerate: () => inner.doGenerate(params),
        doStream: () => inner.doStream(params),
        params,
        model: inner,
      } as never)) as { stream: ReadableStream<unknown> };
      const reader = r.stream.getReader();
      while (!(await reader.read()).done) {}
    };
    await fill(middleware as never);
    await fill(docs as never);
    await firstPartOf(middleware as never);
    await firstPartOf(docs as never);
    const boundary = await compare({
      group: 'llm',
      case: 'wrapStream hit: time to first replayed text part',
      ours: () => firstPartOf(middleware as never),
      theirsLabel: 'AI SDK docs caching middleware (ioredis)',
      theirs: () => firstPartOf(docs as never),
      iterations: 1000,
      rounds: 3,
    });
    rows.push({ ...boundary, target: '<= 2 ms mean', met: boundary.ours.meanMs <= 2 });

    // The pipeline alone (no AI SDK): a hit's first part straight from Redis.
    const llm = new LLMPipeline({ cache });
    const openai = openAICompatibleModel({ baseURL: standin.baseURL });
    const body = { model: 'bench-model', messages: [{ role: 'user', content: 'pipeline hit' }] };
    const req = () => ({ request: body, temperature: 0, models: [openai(body)] });
    await llm.generate(req());
    const firstPart = async () => {
      for await (const _ of llm.stream(req())) break;
    };
    const m = await measure(firstPart, { iterations: 1000 });
    rows.push({
      group: 'llm',
      case: 'LLMPipeline.stream hit: time to first part',
      ours: m,
      theirsLabel: '(absolute)',
      theirs: m,
      ratio: 1,
      target: '<= 2 ms mean',
      met: m.meanMs <= 2,
    });
    await llm.close();
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await middleware.pipeline.close();
    await localMiddleware.pipeline.close();
    await cache.close();
    await localCache.close();
    redis.disconnect();
    await standin.close();
  }
  return rows;
};

export default suite;
