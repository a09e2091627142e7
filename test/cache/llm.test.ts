import { describe, expect, it } from 'vitest';
import { DistributedCache, cachedLLMCall, llmCacheKey } from '../../src/cache/index.js';
import { sha256Hex } from '../../src/core/keys.js';
import { isSerializationError, isValidationError } from '../../src/core/errors.js';
import { servers, uniquePrefix } from '../harness/env.js';

const base = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'What is 2+2?' }],
  temperature: 0,
};

describe('llmCacheKey', () => {
  it('is llm:<sha256> of the canonical request; field order does not matter', () => {
    const k = llmCacheKey(base);
    expect(k).toMatch(/^llm:[0-9a-f]{64}$/);
    expect(llmCacheKey({ temperature: 0, messages: base.messages, model: 'gpt-4o-mini' })).toBe(k);
    expect(k).toBe(
      `llm:${sha256Hex('{"messages":[{"content":"What is 2+2?","role":"user"}],"model":"gpt-4o-mini","temperature":0}')}`,
    );
    // undefined fields are absent; `user`/`metadata` never change the answer.
    expect(llmCacheKey({ ...base, top_p: undefined, user: 'u1', metadata: { a: 1 } })).toBe(k);
  });

  it('changes with the model, messages, tools and every sampling parameter', () => {
    const k = llmCacheKey(base);
    const variants: Record<string, unknown>[] = [
      { model: 'gpt-4o' },
      { messages: [{ role: 'user', content: 'What is 2+3?' }] },
      { messages: [{ role: 'system', content: 'x' }, ...base.messages] },
      { tools: [{ type: 'function', function: { name: 'f' } }] },
      { temperature: 0.2 },
      { top_p: 0.9 },
      { max_tokens: 10 },
      { stop: ['\n'] },
      { seed: 1 },
      { tool_choice: 'auto' },
      { response_format: { type: 'json_object' } },
      { frequency_penalty: 0.5 },
      { n: 2 },
    ];
    const keys = new Set(variants.map((v) => llmCacheKey({ ...base, ...v } as never)));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(k)).toBe(false);
  });

  it('rejects bad requests with typed errors', () => {
    for (const bad of [null, 'prompt', [], {}, { model: '' }, { model: 3 }]) {
      expect(() => llmCacheKey(bad as never)).toThrow(
        expect.objectContaining({ code: 'AZS_VALIDATION' }),
      );
    }
    let e: unknown;
    try {
      llmCacheKey({ model: 'm', seed: 10n } as never);
    } catch (x) {
      e = x;
    }
    expect(isSerializationError(e)).toBe(true);
    expect(llmCacheKey(base, { prefix: 'ai:' })).toMatch(/^ai:/);
  });
});

describe('cachedLLMCall', () => {
  it('caches temperature-0 requests on Redis, calls through otherwise, single-flights', async () => {
    // Counts provider calls, does not time: a round trip past the 1 s default backendTimeout on a
    // loaded machine read as a miss and called the provider again (n: 2).
    const cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('llm'),
      backendTimeout: 10,
    });
    try {
      let calls = 0;
      const provider = async (r: typeof base) => {
        calls++;
        await new Promise((res) => setTimeout(res, 20));
        return { content: `answer to ${r.messages[0]?.content}`, n: calls };
      };
      const rs = await Promise.all(
        Array.from({ length: 5 }, () => cachedLLMCall(cache, base, provider)),
      );
      expect(calls).toBe(1);
      expect(rs.every((r) => r.n === 1)).toBe(true);
      expect(await cachedLLMCall(cache, { ...base }, provider)).toEqual(rs[0]);
      expect(calls).toBe(1);
      expect(await cache.getJSON(llmCacheKey(base))).toEqual(rs[0]);

      const hot = { ...base, temperature: 0.7 };
      await cachedLLMCall(cache, hot, provider);
      await cachedLLMCall(cache, hot, provider);
      expect(calls).toBe(3);
      const noTemp = { model: base.model, messages: base.messages };
      await cachedLLMCall(cache, noTemp as typeof base, provider);
      await cachedLLMCall(cache, noTemp as typeof base, provider);
      expect(calls).toBe(5);
      // Explicit opt-in caches sampled requests too.
      await cachedLLMCall(cache, hot, provider, { cacheNonDeterministic: true, ttl: 60 });
      await cachedLLMCall(cache, hot, provider, { cacheNonDeterministic: true });
      expect(calls).toBe(6);

      for (const bad of [
        () => cachedLLMCall({} as never, base, provider),
        () => cachedLLMCall(cache, base, 'x' as never),
        () => cachedLLMCall(cache, { model: '' } as never, provider),
        () => cachedLLMCall(cache, base, provider, { cacheNonDeterministic: 'yes' as never }),
        () => cachedLLMCall(cache, base, provider, { ttl: -1 }),
      ]) {
        expect(isValidationError(await bad().catch((x: unknown) => x))).toBe(true);
      }
    } finally {
      await cache.close();
    }
  });
});
