import { ChatOpenAI } from '@langchain/openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { isBudgetExceededError, isValidationError } from '../../src/core/index.js';
import { AzscaleCallbackHandler, AzscaleLangChainCache } from '../../src/langchain/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { type LLMStandin, startLLMStandin } from '../harness/llm-standin.js';

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
const modelId = (tag: string) => `lc-${tag}-${++n}-${Math.random().toString(36).slice(2, 7)}`;

function redisCache(): DistributedCache {
  const cache = new DistributedCache({
    redis: servers().redisUrl,
    prefix: uniquePrefix('lc'),
    backendTimeout: 10,
  });
  closers.push(() => cache.close());
  return cache;
}

function chat(model: string, extra: Record<string, unknown> = {}) {
  return new ChatOpenAI({
    model,
    apiKey: 'test',
    temperature: 0,
    maxRetries: 0,
    configuration: { baseURL: standin.baseURL },
    ...extra,
  });
}

describe('AzscaleLangChainCache with ChatOpenAI over real HTTP', () => {
  it('a second identical invoke is served from Redis: one model call', async () => {
    const id = modelId('cache');
    const cache = redisCache();
    const model = chat(id, { cache: new AzscaleLangChainCache(cache, { ttl: 60 }) });
    const a = await model.invoke('What is LangChain?');
    const b = await model.invoke('What is LangChain?');
    expect(standin.callsFor(id)).toBe(1);
    expect(String(a.content)).toContain('What is LangChain?');
    expect(b.content).toBe(a.content);
    // A second process (another cache object on the same Redis) sees the entry too.
    const other = chat(id, { cache: new AzscaleLangChainCache(redisCacheSharing(cache)) });
    const c = await other.invoke('What is LangChain?');
    expect(c.content).toBe(a.content);
    expect(standin.callsFor(id)).toBe(1);
  });

  it('tool calls survive the round trip', async () => {
    const id = modelId('tools');
    const cache = redisCache();
    const model = chat(id, { cache: new AzscaleLangChainCache(cache) }).bindTools([
      {
        type: 'function',
        function: {
          name: 'weather',
          description: 'w',
          parameters: { type: 'object', properties: { city: { type: 'string' } } },
        },
      },
    ]);
    const a = await model.invoke('Oslo');
    const b = await model.invoke('Oslo');
    expect(standin.callsFor(id)).toBe(1);
    expect(a.tool_calls?.[0]?.name).toBe('weather');
    expect(b.tool_calls).toEqual(a.tool_calls);
  });

  it('different call options are different entries; the entry expires after ttl', async () => {
    const id = modelId('opts');
    const cache = redisCache();
    const lc = new AzscaleLangChainCache(cache, { ttl: 1 });
    await chat(id, { cache: lc }).invoke('x');
    await chat(id, { cache: lc, maxTokens: 20 }).invoke('x');
    expect(standin.callsFor(id)).toBe(2);
    await new Promise((r) => setTimeout(r, 1200));
    await chat(id, { cache: lc }).invoke('x');
    expect(standin.callsFor(id)).toBe(3);
  });

  it('validates its arguments', () => {
    expect(() => new AzscaleLangChainCache({} as DistributedCache)).toThrow(/DistributedCache/);
    const lc = new AzscaleLangChainCache(redisCache());
    expect(() => lc.keyOf(1 as unknown as string, 'k')).toThrow();
    for (const ttl of [-1, Number.NaN, '5']) {
      let err: unknown;
      try {
        new AzscaleLangChainCache(redisCache(), { ttl: ttl as number });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err)).toBe(true);
    }
  });
});

// Another DistributedCache object on the same Redis and prefix: what a second process has.
function redisCacheSharing(cache: DistributedCache): DistributedCache {
  const prefix = (cache as unknown as { prefix: string }).prefix;
  const other = new DistributedCache({ redis: servers().redisUrl, prefix, backendTimeout: 10 });
  closers.push(() => other.close());
  return other;
}

describe('AzscaleCallbackHandler', () => {
  it('records spend from usage and refuses runs once the budget is spent', async () => {
    const id = modelId('budget');
    const optimizer = new CostOptimizer({
      hourlyBudget: 0.0005,
      prices: { models: { [id]: { input: 10, output: 10 } } },
    });
    closers.push(() => optimizer.close());
    const handler = new AzscaleCallbackHandler({ optimizer });
    const spends: number[] = [];
    handler.on('spend', (s) => spends.push(s.dollars));
    const model = chat(id, { callbacks: [handler] });
    let refused: unknown;
    let ok = 0;
    for (let i = 0; i < 100 && !refused; i++) {
      try {
        await model.invoke(`spend ${i} ${'y'.repeat(80)}`);
        ok++;
      } catch (e) {
        refused = e;
      }
    }
    expect(isBudgetExceededError(refused)).toBe(true);
    expect(ok).toBeGreaterThan(0);
    // The refused run never reached the provider.
    expect(standin.callsFor(id)).toBe(ok);
    expect(spends).toHaveLength(ok);
    const total = spends.reduce((a, b) => a + b, 0);
    expect(await optimizer.currentSpend()).toBeCloseTo(total, 10);
    expect(total).toBeGreaterThanOrEqual(0.0005);
  });

  it('does not charge cache hits', async () => {
    const id = modelId('nocharge');
    const optimizer = new CostOptimizer({ prices: { models: { [id]: { input: 1, output: 1 } } } });
    closers.push(() => optimizer.close());
    const handler = new AzscaleCallbackHandler({ optimizer });
    const model = chat(id, {
      callbacks: [handler],
      cache: new AzscaleLangChainCache(redisCache()),
    });
    await model.invoke('once');
    const after1 = await optimizer.currentSpend();
    await model.invoke('once');
    expect(await optimizer.currentSpend()).toBe(after1);
    expect(after1).toBeGreaterThan(0);
  });

  it('validates its options', () => {
    expect(() => new AzscaleCallbackHandler({} as never)).toThrow(/CostOptimizer/);
  });
});
