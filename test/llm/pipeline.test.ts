import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import {
  isCancelledError,
  isLLMProviderError,
  isTimeoutError,
  isValidationError,
} from '../../src/core/index.js';
import {
  LLMPipeline,
  type LLMPipelineRequest,
  type LLMStreamPart,
  isProviderFailure,
  openAICompatibleModel,
} from '../../src/llm/index.js';
import { setupTracing } from '../../src/observability/index.js';
import { ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { type LLMStandin, startLLMStandin } from '../harness/llm-standin.js';
import { useInMemoryTracing } from '../harness/tracing.js';

let standin: LLMStandin;
beforeAll(async () => {
  standin = await startLLMStandin();
});
afterAll(async () => {
  await standin.close();
});
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

let n = 0;
const modelId = (tag: string) => `p-${tag}-${++n}-${Math.random().toString(36).slice(2, 7)}`;

function pipeline(options: ConstructorParameters<typeof LLMPipeline>[0] = {}): LLMPipeline {
  const p = new LLMPipeline(options);
  closers.push(() => p.close());
  return p;
}
function redisCache(): DistributedCache {
  const c = new DistributedCache({
    redis: servers().redisUrl,
    prefix: uniquePrefix('pipe'),
    backendTimeout: 10,
  });
  closers.push(() => c.close());
  return c;
}
const openai = () => openAICompatibleModel({ baseURL: standin.baseURL, provider: 'standin' });

function request(
  models: string[],
  prompt: string,
  extra: Partial<LLMPipelineRequest> = {},
): LLMPipelineRequest {
  const call = openai();
  const body = (m: string) => ({ model: m, messages: [{ role: 'user', content: prompt }] });
  return {
    request: body(models[0] as string),
    models: models.map((m) => call(body(m))),
    temperature: 0,
    ...extra,
  };
}

async function drain(parts: AsyncIterable<LLMStreamPart>): Promise<string> {
  let text = '';
  for await (const p of parts) if (p.type === 'text') text += p.text;
  return text;
}

describe('LLMPipeline', () => {
  const tracing = useInMemoryTracing();

  it('emits an azscale.llm.chat span with gen_ai attributes, and per-attempt spans', async () => {
    const t = setupTracing({ serviceName: 'llm-test', tracerProvider: tracing.provider });
    try {
      const id = modelId('span');
      const llm = pipeline({ cache: redisCache() });
      await llm.generate(request([id], 'trace me', { maxOutputTokens: 64 }));
      await llm.generate(request([id], 'trace me', { maxOutputTokens: 64 }));
      const spans = tracing.exporter
        .getFinishedSpans()
        .filter((s) => s.name === 'azscale.llm.chat');
      const mine = spans.filter((s) => s.attributes['gen_ai.request.model'] === id);
      expect(mine).toHaveLength(2);
      const [miss, hit] = mine;
      expect(miss?.attributes['gen_ai.operation.name']).toBe('chat');
      expect(miss?.attributes['gen_ai.system']).toBe('standin');
      expect(miss?.attributes['gen_ai.request.temperature']).toBe(0);
      expect(miss?.attributes['gen_ai.request.max_tokens']).toBe(64);
      expect(miss?.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(miss?.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(miss?.attributes['gen_ai.response.model']).toBe(id);
      expect(miss?.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
      expect(miss?.attributes['azscale.llm.source']).toBe('model');
      expect(hit?.attributes['azscale.llm.source']).toBe('cache');
      expect(hit?.attributes['gen_ai.usage.output_tokens']).toBe(0);
      const attempts = tracing.exporter
        .getFinishedSpans()
        .filter(
          (s) => s.name === 'azscale.llm.attempt' && s.attributes['gen_ai.request.model'] === id,
        );
      expect(attempts).toHaveLength(1);
    } finally {
      t.disable();
    }
  });

  it('bounds the calls in flight with a ConcurrencyLimiter', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 2 });
    closers.push(() => limiter.close());
    const llm = pipeline({ limiter });
    const id = modelId('conc');
    standin.behave(id, { delayMs: 150 });
    standin.reset();
    await Promise.all([1, 2, 3, 4, 5, 6].map((i) => llm.generate(request([id], `c ${i}`))));
    expect(standin.callsFor(id)).toBe(6);
    expect(standin.inFlight.max).toBeLessThanOrEqual(2);
  });

  it('a timeout moves to the next model and counts as a provider failure', async () => {
    const slow = modelId('slow');
    const quick = modelId('quick');
    // Far apart, so a loaded machine cannot blur them: the slow one never answers in time.
    standin.behave(slow, { delayMs: 30_000 });
    const llm = pipeline({ timeout: 2 });
    const errors: unknown[] = [];
    llm.on('fallback', (f) => errors.push(f.error));
    const r = await llm.generate(request([slow, quick], 'hurry'));
    expect(r.model).toBe(quick);
    expect(r.entry.text).toContain(quick);
    expect(isTimeoutError(errors[0])).toBe(true);
    expect(isProviderFailure(errors[0])).toBe(true);
  });

  it('a 429 with Retry-After pauses the rate limiter for the fleet and falls back', async () => {
    const limited = modelId('429');
    const backup = modelId('429b');
    standin.behave(limited, { status: 429, retryAfter: 2 });
    const rate = new RateLimiter({
      redis: servers().redisUrl,
      key: uniquePrefix('r429'),
      requestsPerMinute: 1000,
      maxWait: 0,
    });
    closers.push(() => rate.close());
    const llm = pipeline({ rateLimiter: rate });
    const r = await llm.generate(request([limited, backup], 'busy'));
    expect(r.model).toBe(backup);
    const next = await rate.tryAcquire();
    expect(next.allowed).toBe(false);
    expect(next.retryAfter).toBeGreaterThan(1);
  });

  it('corrects the token estimate with the reported usage', async () => {
    const id = modelId('tokens');
    standin.behave(id, { completionTokens: 900 });
    const rate = new RateLimiter({
      redis: servers().redisUrl,
      key: uniquePrefix('rtok'),
      tokensPerMinute: 1000,
      maxWait: 0,
    });
    closers.push(() => rate.close());
    const llm = pipeline({ rateLimiter: rate, countTokens: () => 10 });
    const r = await llm.generate(request([id], 'big answer'));
    expect(r.entry.usage?.outputTokens).toBe(900);
    // 10 estimated + the difference taken after: ~900 of the 1000 are gone.
    expect((await rate.tryAcquire({ tokens: 200 })).allowed).toBe(false);
    expect((await rate.tryAcquire({ tokens: 50 })).allowed).toBe(true);
  });

  it('refunds what the estimate overstated, once, on a sliding window made from options', async () => {
    const id = modelId('refund');
    standin.behave(id, { completionTokens: 7 });
    const llm = pipeline({
      rateLimiter: {
        redis: servers().redisUrl,
        key: uniquePrefix('rref'),
        tokensPerMinute: 1000,
        maxWait: 0,
      },
      countTokens: () => 600,
    });
    const rate = llm.rateLimiter as RateLimiter;
    expect(rate.mode).toBe('sliding-window');
    const r = await llm.generate(request([id], 'small answer'));
    const usage = r.entry.usage as { inputTokens: number; outputTokens: number };
    expect(usage.outputTokens).toBe(7);
    const actual = usage.inputTokens + usage.outputTokens;
    // 600 taken before the call, settled to the reported usage after: the rest is free again.
    expect((await rate.tryAcquire({ tokens: 1000 - actual })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
    await llm.close();
    // The pipeline made the limiter, so it closed it.
    await expect(rate.tryAcquire()).rejects.toMatchObject({ code: 'AZS_CLOSED' });
  });

  it('a stream abandoned mid-way aborts the call and is not cached', async () => {
    const id = modelId('abandon');
    const cache = redisCache();
    const llm = pipeline({ cache });
    standin.behave(id, { chunkDelayMs: 100 });
    const s = llm.stream(request([id], 'a b c d e f g h i j k l'));
    for await (const p of s) {
      if (p.type === 'text') break;
    }
    await expect(s.result).rejects.toSatisfy(isCancelledError);
    standin.behave(id, undefined);
    const again = await llm.generate(request([id], 'a b c d e f g h i j k l'));
    expect(again.source).toBe('model');
    expect(standin.callsFor(id)).toBe(2);
  });

  it('a whole-answer caller joins a running stream of the same request', async () => {
    const id = modelId('join');
    const llm = pipeline({ cache: redisCache() });
    standin.behave(id, { chunkDelayMs: 30 });
    const s = llm.stream(request([id], 'join me now please'));
    const [text, whole] = await Promise.all([
      drain(s),
      llm.generate(request([id], 'join me now please')),
    ]);
    expect(standin.callsFor(id)).toBe(1);
    expect(whole.entry.text).toBe(text);
  });

  it('concurrent identical whole-answer misses call the model once; later hits skip the flight', async () => {
    const id = modelId('herd');
    const counts = new Map<string, number>();
    const metrics = {
      counter: (name: string, labels?: Record<string, string>) => ({
        inc: (by = 1) => {
          const k = `${name}:${labels?.source ?? ''}`;
          counts.set(k, (counts.get(k) ?? 0) + by);
        },
      }),
      histogram: () => ({ observe: () => undefined }),
      gauge: () => ({ set: () => undefined, inc: () => undefined, dec: () => undefined }),
    };
    const llm = pipeline({ cache: redisCache(), metrics: metrics as never });
    standin.behave(id, { delayMs: 150 });
    const all = await Promise.all(
      Array.from({ length: 5 }, () => llm.generate(request([id], 'one call for the herd'))),
    );
    expect(standin.callsFor(id)).toBe(1);
    expect(all.filter((r) => r.source === 'model')).toHaveLength(1);
    // The others joined that call: `peer`, as LLMPipelineResult.source documents.
    expect(all.filter((r) => r.source === 'peer')).toHaveLength(4);
    expect(new Set(all.map((r) => r.entry.text)).size).toBe(1);
    const hit = await llm.generate(request([id], 'one call for the herd'));
    expect(hit.source).toBe('cache');
    expect(hit.model).toBeUndefined();
    expect(hit.entry).toEqual(all[0]?.entry);
    expect(counts.get('llm_requests_total:cache')).toBe(1);
    expect(counts.get('llm_requests_total:model')).toBe(1);
    expect(counts.get('llm_requests_total:peer')).toBe(4);
    expect(standin.callsFor(id)).toBe(1);
    // A caller whose signal is already aborted is refused on the hit path too.
    const gone = new AbortController();
    gone.abort();
    const refused = await llm
      .generate(request([id], 'one call for the herd', { signal: gone.signal }))
      .catch((e: unknown) => e);
    expect(isCancelledError(refused)).toBe(true);
  });

  it('replays with pacing when asked', async () => {
    const id = modelId('pace');
    const llm = pipeline({ cache: redisCache(), replay: { chunkChars: 5, delayMs: 20 } });
    const first = await llm.generate(request([id], 'pace this answer'));
    const parts: LLMStreamPart[] = [];
    const t0 = performance.now();
    for await (const p of llm.stream(request([id], 'pace this answer'))) parts.push(p);
    const texts = parts.filter((p) => p.type === 'text');
    expect(texts.length).toBe(Math.ceil(first.entry.text.length / 5));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20 * (parts.length - 1) * 0.8);
  });

  it('a corrupt cache entry is a miss, overwritten by the next answer', async () => {
    const id = modelId('corrupt');
    const cache = redisCache();
    const llm = pipeline({ cache });
    const req = request([id], 'fix me');
    const key = llm.cacheKey(req) as string;
    await cache.setJSON(key, { v: 1, text: 5 });
    const r = await llm.generate(req);
    expect(r.source).toBe('model');
    expect((await cache.getJSON<{ text: string }>(key))?.text).toBe(r.entry.text);
  });

  it('provider errors are typed: status and Retry-After', async () => {
    const id = modelId('err');
    standin.behave(id, { status: 503, retryAfter: 7 });
    const llm = pipeline();
    const e = await llm.generate(request([id], 'x')).catch((x: unknown) => x);
    expect(isLLMProviderError(e)).toBe(true);
    expect((e as { status: number }).status).toBe(503);
    expect((e as { retryAfter: number }).retryAfter).toBe(7);
  });

  it('validates options and requests, naming the option', async () => {
    for (const [options, option] of [
      [{ cache: {} }, 'cache'],
      [{ ttl: 0 }, 'ttl'],
      [{ cooldown: Number.NaN }, 'cooldown'],
      [{ timeout: -1 }, 'timeout'],
      [{ cacheNonDeterministic: 'yes' }, 'cacheNonDeterministic'],
      [{ rateLimiter: {} }, 'rateLimiter'],
      [{ rateLimiter: { tokensPerMinute: 100, window: 0 } }, 'rateLimiter.window'],
      [{ limiter: 5 }, 'limiter'],
      [{ optimizer: null }, 'optimizer'],
      [{ replay: { chunkChars: -2 } }, 'replay.chunkChars'],
      [{ countTokens: 'x' }, 'countTokens'],
      [{ keyPrefix: 'a\nb' }, 'keyPrefix'],
    ] as const) {
      let err: unknown;
      try {
        new LLMPipeline(options as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), option).toBe(true);
      expect((err as { option?: string }).option).toBe(option);
    }
    const llm = pipeline();
    await expect(llm.generate({ request: {}, models: [] })).rejects.toSatisfy(isValidationError);
    await expect(llm.generate({ request: {}, models: [{ model: 'x' }] })).rejects.toSatisfy(
      isValidationError,
    );
    const bad = pipeline({
      rateLimiter: new RateLimiter({ requestsPerMinute: 10 }),
      countTokens: () => Number.NaN,
    });
    await expect(bad.generate(request([modelId('nan')], 'x'))).rejects.toSatisfy(isValidationError);
  });
});
