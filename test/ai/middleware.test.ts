import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { azscaleMiddleware } from '../../src/ai/index.js';
import { DistributedCache } from '../../src/cache/index.js';
import { isBudgetExceededError } from '../../src/core/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { type LLMStandin, startLLMStandin } from '../harness/llm-standin.js';
import { SDKS } from './sdks.js';

let standin: LLMStandin;
beforeAll(async () => {
  standin = await startLLMStandin();
});
afterAll(async () => {
  await standin.close();
});

let n = 0;
/** A model id of its own per test, so counts at the stand-in are per test. */
function modelId(tag: string): string {
  return `m-${tag}-${++n}-${Math.random().toString(36).slice(2, 8)}`;
}

describe.each(SDKS)('$name', (sdk) => {
  // biome-ignore lint/suspicious/noExplicitAny: the two majors' types differ; see sdks.ts
  let ai: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  let provider: any;
  const caches: DistributedCache[] = [];
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    if (sdk.skip) return;
    const loaded = await sdk.load();
    ai = loaded.ai;
    provider = loaded.provider(standin.baseURL);
  });
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    for (const c of caches.splice(0)) await c.close();
  });

  function redisCache(): DistributedCache {
    const cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('ai'),
      backendTimeout: 10,
    });
    caches.push(cache);
    return cache;
  }

  function wrap(id: string, options: Parameters<typeof azscaleMiddleware>[0] = {}) {
    const middleware = azscaleMiddleware({ cache: redisCache(), ...options });
    closers.push(() => middleware.pipeline.close());
    return { model: ai.wrapLanguageModel({ model: provider(id), middleware }), middleware };
  }

  async function streamAll(model: unknown, prompt: string, extra: Record<string, unknown> = {}) {
    const r = ai.streamText({ model, prompt, temperature: 0, ...extra });
    let text = '';
    for await (const t of r.textStream) text += t;
    return { text, r };
  }

  it.skipIf(sdk.skip)(
    'a second identical generateText is served from the cache: one model call',
    async () => {
      const id = modelId('gen');
      const { model } = wrap(id);
      const a = await ai.generateText({ model, prompt: 'What is Redis?', temperature: 0 });
      const b = await ai.generateText({ model, prompt: 'What is Redis?', temperature: 0 });
      expect(standin.callsFor(id)).toBe(1);
      expect(a.text).toContain('What is Redis?');
      expect(b.text).toBe(a.text);
      expect(b.providerMetadata?.azscale?.source).toBe('cache');
      expect(a.providerMetadata?.azscale?.source).toBe('model');
      expect(b.usage.inputTokens).toBe(a.usage.inputTokens);
      expect(b.finishReason).toBe('stop');
    },
  );

  it.skipIf(sdk.skip)(
    'a second identical streamText is replayed from the cache: one model call',
    async () => {
      const id = modelId('stream');
      const { model } = wrap(id);
      const a = await streamAll(model, 'Tell me about streams');
      const b = await streamAll(model, 'Tell me about streams');
      expect(standin.callsFor(id)).toBe(1);
      expect(standin.calls.find((c) => c.model === id)?.stream).toBe(true);
      expect(a.text.length).toBeGreaterThan(10);
      expect(b.text).toBe(a.text);
      expect(await b.r.finishReason).toBe('stop');
      expect((await b.r.usage).outputTokens).toBe((await a.r.usage).outputTokens);
    },
  );

  it.skipIf(sdk.skip)(
    'stream -> whole: a streamed answer serves a later generateText',
    async () => {
      const id = modelId('s2w');
      const { model } = wrap(id);
      const s = await streamAll(model, 'share me');
      const g = await ai.generateText({ model, prompt: 'share me', temperature: 0 });
      expect(standin.callsFor(id)).toBe(1);
      expect(g.text).toBe(s.text);
      expect(g.providerMetadata?.azscale?.source).toBe('cache');
    },
  );

  it.skipIf(sdk.skip)(
    'whole -> stream: a generated answer is replayed to a later streamText',
    async () => {
      const id = modelId('w2s');
      const { model } = wrap(id);
      const g = await ai.generateText({ model, prompt: 'and back', temperature: 0 });
      const s = await streamAll(model, 'and back');
      expect(standin.callsFor(id)).toBe(1);
      expect(s.text).toBe(g.text);
    },
  );

  it.skipIf(sdk.skip)(
    'a stream that breaks mid-way is not cached; the next call goes to the model',
    async () => {
      const id = modelId('broken');
      const { model } = wrap(id);
      standin.behave(id, { breakAfterChunks: 2, count: 1 });
      const r = ai.streamText({
        model,
        prompt: 'one two three four five six',
        temperature: 0,
        onError: () => {},
      });
      let text = '';
      let failed: unknown;
      try {
        for await (const t of r.fullStream) {
          if (t.type === 'text-delta') text += t.text ?? t.delta ?? '';
          if (t.type === 'error') failed = t.error;
        }
      } catch (e) {
        failed = e;
      }
      expect(failed).toBeDefined();
      expect(text.length).toBeGreaterThan(0);
      const ok = await streamAll(model, 'one two three four five six');
      expect(standin.callsFor(id)).toBe(2);
      expect(ok.text).toContain('one two three');
      const again = await ai.generateText({
        model,
        prompt: 'one two three four five six',
        temperature: 0,
      });
      expect(standin.callsFor(id)).toBe(2);
      expect(again.text).toBe(ok.text);
    },
  );

  it.skipIf(sdk.skip)('concurrent identical streamText calls share one model call', async () => {
    const id = modelId('flight');
    const { model } = wrap(id);
    standin.behave(id, { chunkDelayMs: 20 });
    const results = await Promise.all([1, 2, 3].map(() => streamAll(model, 'all at once please')));
    expect(standin.callsFor(id)).toBe(1);
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
  });

  it.skipIf(sdk.skip)('tool calls are cached and replayed, whole and streamed', async () => {
    const id = modelId('tools');
    const { model } = wrap(id);
    const { z } = await import('zod');
    const tools = {
      weather: ai.tool({ description: 'weather', inputSchema: z.object({ city: z.string() }) }),
    };
    const a = await ai.generateText({ model, prompt: 'Paris', tools, temperature: 0 });
    expect(a.toolCalls).toHaveLength(1);
    expect(a.toolCalls[0].toolName).toBe('weather');
    expect(a.toolCalls[0].input).toEqual({ city: 'Paris' });
    const b = await ai.generateText({ model, prompt: 'Paris', tools, temperature: 0 });
    expect(b.toolCalls[0].input).toEqual({ city: 'Paris' });
    expect(b.toolCalls[0].toolCallId).toBe(a.toolCalls[0].toolCallId);
    const s = ai.streamText({ model, prompt: 'Paris', tools, temperature: 0 });
    const streamed = await s.toolCalls;
    expect(streamed[0].input).toEqual({ city: 'Paris' });
    expect(standin.callsFor(id)).toBe(1);
  });

  it.skipIf(sdk.skip)('generateObject and streamObject share one cached JSON answer', async () => {
    const id = modelId('obj');
    const { model } = wrap(id);
    const { z } = await import('zod');
    const schema = z.object({ answer: z.string(), id: z.string() });
    const a = await ai.generateObject({ model, schema, prompt: 'structured', temperature: 0 });
    expect(a.object.answer).toBe('echo structured');
    const b = await ai.generateObject({ model, schema, prompt: 'structured', temperature: 0 });
    expect(b.object).toEqual(a.object);
    const s = ai.streamObject({ model, schema, prompt: 'structured', temperature: 0 });
    // streamObject settles its promises as its stream is read.
    let last: unknown;
    for await (const partial of s.partialObjectStream) last = partial;
    expect(last).toEqual(a.object);
    expect(await s.object).toEqual(a.object);
    expect(standin.callsFor(id)).toBe(1);
  });

  it.skipIf(sdk.skip)('the key covers answer-changing options and ignores headers', async () => {
    const id = modelId('key');
    const { model } = wrap(id);
    await ai.generateText({ model, prompt: 'k', temperature: 0, headers: { 'x-a': '1' } });
    await ai.generateText({ model, prompt: 'k', temperature: 0, headers: { 'x-a': '2' } });
    expect(standin.callsFor(id)).toBe(1);
    await ai.generateText({ model, prompt: 'k', temperature: 0, maxOutputTokens: 50 });
    expect(standin.callsFor(id)).toBe(2);
    await ai.generateText({ model, prompt: 'k', temperature: 0, seed: 7 });
    expect(standin.callsFor(id)).toBe(3);
    await ai.generateText({ model, prompt: 'k', temperature: 0, stopSequences: ['x'] });
    expect(standin.callsFor(id)).toBe(4);
    await ai.generateText({ model, prompt: 'k', temperature: 0, topP: 0.5 });
    expect(standin.callsFor(id)).toBe(5);
    await ai.generateText({ model, prompt: 'k2', temperature: 0 });
    expect(standin.callsFor(id)).toBe(6);
    // Another model id behind the same provider is another key.
    const other = modelId('key-other');
    const { model: m2 } = wrap(other);
    await ai.generateText({ model: m2, prompt: 'k', temperature: 0 });
    expect(standin.callsFor(other)).toBe(1);
  });

  it.skipIf(sdk.skip)('sampled requests are not cached unless cacheNonDeterministic', async () => {
    const id = modelId('sampled');
    const { model } = wrap(id);
    await ai.generateText({ model, prompt: 'hot' });
    await ai.generateText({ model, prompt: 'hot' });
    expect(standin.callsFor(id)).toBe(2);
    const id2 = modelId('sampled-on');
    const { model: m2 } = wrap(id2, { cacheNonDeterministic: true });
    await ai.generateText({ model: m2, prompt: 'hot', temperature: 0.7 });
    await ai.generateText({ model: m2, prompt: 'hot', temperature: 0.7 });
    expect(standin.callsFor(id2)).toBe(1);
  });

  it.skipIf(sdk.skip)(
    'a failing primary falls back; after the cooldown the primary is tried again',
    async () => {
      const primary = modelId('primary');
      const backup = modelId('backup');
      const { model, middleware } = wrap(primary, {
        fallbackModels: [provider(backup)],
        breaker: { name: uniquePrefix('brk'), redis: servers().redisUrl },
        cooldown: 1,
      });
      const fallbacks: string[] = [];
      middleware.pipeline.on('fallback', (f) => fallbacks.push(`${f.from}->${f.to}`));
      standin.behave(primary, { status: 503 });
      const a = await ai.generateText({ model, prompt: 'fb 1', temperature: 0, maxRetries: 0 });
      expect(a.text).toContain(backup);
      expect(standin.callsFor(primary)).toBe(1);
      expect(fallbacks).toEqual([`${primary}->${backup}`]);
      // The primary's breaker is open: the next request goes straight to the backup.
      const b = await ai.generateText({ model, prompt: 'fb 2', temperature: 0, maxRetries: 0 });
      expect(b.text).toContain(backup);
      expect(standin.callsFor(primary)).toBe(1);
      standin.behave(primary, undefined);
      await new Promise((r) => setTimeout(r, 1300));
      const c = await ai.generateText({ model, prompt: 'fb 3', temperature: 0, maxRetries: 0 });
      expect(standin.callsFor(primary)).toBe(2);
      expect(c.text).toContain(primary);
      expect(c.providerMetadata?.azscale?.model).toBe(primary);
    },
  );

  it.skipIf(sdk.skip)('a 400 does not fall back: it is the request that is wrong', async () => {
    const primary = modelId('bad');
    const backup = modelId('bad-backup');
    const { model } = wrap(primary, { fallbackModels: [provider(backup)] });
    standin.behave(primary, { status: 400 });
    await expect(
      ai.generateText({ model, prompt: 'x', temperature: 0, maxRetries: 0 }),
    ).rejects.toThrow();
    expect(standin.callsFor(backup)).toBe(0);
  });

  it.skipIf(sdk.skip)(
    'the budget stops calls once spent and records spend from usage',
    async () => {
      const id = modelId('budget');
      const optimizer = new CostOptimizer({
        hourlyBudget: 0.001,
        prices: { models: { [id]: { input: 10, output: 10 } } },
      });
      closers.push(() => optimizer.close());
      const { model } = wrap(id, { optimizer });
      let refused: unknown;
      let calls = 0;
      for (let i = 0; i < 200 && !refused; i++) {
        try {
          await ai.generateText({
            model,
            prompt: `budget ${i} ${'x'.repeat(200)}`,
            temperature: 0,
            maxRetries: 0,
          });
          calls++;
        } catch (e) {
          refused = e;
        }
      }
      expect(
        isBudgetExceededError(refused) ||
          isBudgetExceededError((refused as { cause?: unknown })?.cause),
      ).toBe(true);
      expect(calls).toBeGreaterThan(0);
      expect(standin.callsFor(id)).toBe(calls);
      expect(await optimizer.currentSpend()).toBeGreaterThanOrEqual(0.001);
    },
  );
});
