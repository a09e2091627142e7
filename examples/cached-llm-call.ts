/**
 * Cached LLM calls: the seed's `cached_llm_call`, with a key that covers the model, the messages
 * and every sampling parameter, so a different temperature or tool list is never served a wrong
 * hit. Deterministic requests (temperature 0) are cached by default.
 *
 *   node --import tsx examples/cached-llm-call.ts
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/cached-llm-call.ts
 *
 * In your project: import { DistributedCache, cachedLLMCall, cached } from 'azscale/cache'.
 */
import { DistributedCache, cached, cachedLLMCall, llmCacheKey } from '../src/cache/index.js';

const cache = new DistributedCache({
  ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
  ttl: 3600, // seconds
  local: { max: 1000 }, // in-process L1 in front of Redis
});

let providerCalls = 0;
/** Stands in for `openai.chat.completions.create(request)`. */
async function callProvider(request: {
  model: string;
  messages: { role: string; content: string }[];
  temperature: number;
}) {
  providerCalls++;
  await new Promise((r) => setTimeout(r, 50));
  return { content: `answer to "${request.messages.at(-1)?.content}"`, model: request.model };
}

const request = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'What is horizontal scaling?' }],
  temperature: 0,
};
console.log('cache key:', llmCacheKey(request));

const t0 = performance.now();
const a = await cachedLLMCall(cache, request, callProvider);
const t1 = performance.now();
const b = await cachedLLMCall(cache, request, callProvider); // a hit
const t2 = performance.now();
// Ten concurrent misses of one new request run the provider once (single-flight).
const same = { ...request, messages: [{ role: 'user', content: 'And vertical?' }] };
await Promise.all(Array.from({ length: 10 }, () => cachedLLMCall(cache, same, callProvider)));
// A sampled request (temperature 0.7) is not cached unless you opt in.
await cachedLLMCall(cache, { ...request, temperature: 0.7 }, callProvider);

console.log(
  `miss ${(t1 - t0).toFixed(1)} ms, hit ${(t2 - t1).toFixed(2)} ms, same answer: ${a.content === b.content}`,
);

// The same for any function: the seed's @cached(ttl=3600), here as a wrapper.
const expensive = cached(
  async (city: string, days: number) => {
    providerCalls++;
    return `${days}-day plan for ${city}`;
  },
  { ttl: 3600, cache },
);
await expensive('Lisbon', 3);
await expensive('Lisbon', 3);

console.log(`provider calls: ${providerCalls} (expected 4)`);
await cache.close();
if (providerCalls !== 4) process.exitCode = 1;
