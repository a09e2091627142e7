import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache, cachedLLMCall, llmCacheKey } from '../../src/cache/index.js';
import { isLLMProviderError, isValidationError } from '../../src/core/index.js';
import type {
  CachedLLMStream,
  LLMRequest,
  LLMStreamSource,
  OpenAIChatChunk,
} from '../../src/llm/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { type LLMStandin, startLLMStandin } from '../harness/llm-standin.js';

let standin: LLMStandin;
let cache: DistributedCache;
beforeAll(async () => {
  standin = await startLLMStandin();
});
afterAll(async () => {
  await standin.close();
});
afterEach(async () => {
  await cache?.close();
});

function post(body: unknown): Promise<Response> {
  return fetch(`${standin.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function collect(chunks: AsyncIterable<OpenAIChatChunk>) {
  let text = '';
  let finish: string | null | undefined;
  let usage: unknown;
  for await (const c of chunks) {
    text += c.choices?.[0]?.delta?.content ?? '';
    finish = c.choices?.[0]?.finish_reason ?? finish;
    if (c.usage) usage = c.usage;
  }
  return { text, finish, usage };
}

let n = 0;
const model = () => `raw-${++n}-${Math.random().toString(36).slice(2, 7)}`;

describe('cachedLLMCall with stream: true', () => {
  it('a source typed with the azscale/llm types: an async generator of chunk objects', async () => {
    cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('rawllm'),
      backendTimeout: 10,
    });
    const m = model();
    const req: LLMRequest & { stream: true } = {
      model: m,
      temperature: 0,
      stream: true,
      messages: [{ role: 'user', content: 'typed source' }],
    };
    let calls = 0;
    const source = (r: LLMRequest): LLMStreamSource => {
      calls++;
      return (async function* () {
        const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: r.model };
        yield {
          ...base,
          choices: [{ index: 0, delta: { content: 'typed ' }, finish_reason: null }],
        };
        yield {
          ...base,
          choices: [{ index: 0, delta: { content: 'answer' }, finish_reason: 'stop' }],
        };
      })();
    };
    const first: CachedLLMStream = await cachedLLMCall(cache, req, source);
    expect((await collect(first)).text).toBe('typed answer');
    const again = await cachedLLMCall(cache, req, source);
    expect((await collect(again)).text).toBe('typed answer');
    expect((await again.result).source).toBe('cache');
    expect(calls).toBe(1);
  });

  it('caches an SSE Response as one entry and replays it as chunks', async () => {
    cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('rawllm'),
      backendTimeout: 10,
    });
    const m = model();
    const req = {
      model: m,
      temperature: 0,
      stream: true as const,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream me please' }],
    };
    const a = await collect(await cachedLLMCall(cache, req, (r) => post(r)));
    const second = await cachedLLMCall(cache, req, (r) => post(r));
    const b = await collect(second);
    expect(standin.callsFor(m)).toBe(1);
    expect(a.text).toContain('stream me please');
    expect(b.text).toBe(a.text);
    expect(b.finish).toBe('stop');
    expect(b.usage).toEqual(a.usage);
    expect((await second.result).source).toBe('cache');
  });

  it('a streamed and a whole answer of one request never share an entry', async () => {
    cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('rawllm'),
      backendTimeout: 10,
    });
    const m = model();
    const base = { model: m, temperature: 0, messages: [{ role: 'user', content: 'same' }] };
    const whole = await cachedLLMCall(cache, base, async (r) => (await post(r)).json());
    expect((whole as { object: string }).object).toBe('chat.completion');
    const streamed = await collect(
      await cachedLLMCall(cache, { ...base, stream: true as const }, (r) => post(r)),
    );
    expect(streamed.text.length).toBeGreaterThan(0);
    expect(standin.callsFor(m)).toBe(2);
    // Each is served from its own entry afterwards.
    const again = await cachedLLMCall(cache, base, async (r) => (await post(r)).json());
    expect(again).toEqual(whole);
    await collect(await cachedLLMCall(cache, { ...base, stream: true as const }, (r) => post(r)));
    expect(standin.callsFor(m)).toBe(2);
    expect(await cache.getJSON(llmCacheKey(base))).toEqual(whole);
  });

  it('a stream that breaks mid-way throws while iterating and is not cached', async () => {
    cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('rawllm'),
      backendTimeout: 10,
    });
    const m = model();
    const req = {
      model: m,
      temperature: 0,
      stream: true as const,
      messages: [{ role: 'user', content: 'a b c d e f g h' }],
    };
    standin.behave(m, { breakAfterChunks: 2, count: 1 });
    let seen = '';
    let failure: unknown;
    try {
      for await (const c of await cachedLLMCall(cache, req, (r) => post(r))) {
        seen += c.choices?.[0]?.delta?.content ?? '';
      }
    } catch (e) {
      failure = e;
    }
    expect(isLLMProviderError(failure)).toBe(true);
    expect(seen.length).toBeGreaterThan(0);
    const ok = await collect(await cachedLLMCall(cache, req, (r) => post(r)));
    expect(standin.callsFor(m)).toBe(2);
    expect(ok.text).toContain('a b c d');
  });

  it('accepts an async iterable of chunk objects, tool calls included', async () => {
    cache = new DistributedCache({ prefix: uniquePrefix('rawllm') });
    let calls = 0;
    async function* provider() {
      calls++;
      yield { id: 'c1', model: 'x', choices: [{ index: 0, delta: { role: 'assistant' } }] };
      yield {
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [{ index: 0, id: 't1', function: { name: 'get', arguments: '{"a"' } }],
            },
          },
        ],
      };
      yield {
        choices: [
          { index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: ':1}' } }] } },
        ],
      };
      yield { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] };
      yield { choices: [], usage: { prompt_tokens: 5, completion_tokens: 3 } };
    }
    const req = { model: 'x', temperature: 0, stream: true as const, messages: [] };
    const first = await cachedLLMCall(cache, req, () => provider());
    for await (const _ of first) {
      // drain
    }
    const r = await first.result;
    expect(r.entry.toolCalls).toEqual([{ id: 't1', name: 'get', arguments: '{"a":1}' }]);
    expect(r.entry.finishReason).toBe('tool-calls');
    expect(r.entry.usage).toEqual({ inputTokens: 5, outputTokens: 3 });
    const replay: OpenAIChatChunk[] = [];
    for await (const c of await cachedLLMCall(cache, req, () => provider())) replay.push(c);
    expect(calls).toBe(1);
    const tool = replay.find((c) => c.choices?.[0]?.delta?.tool_calls);
    expect(tool?.choices?.[0]?.delta?.tool_calls?.[0]).toMatchObject({
      id: 't1',
      function: { name: 'get', arguments: '{"a":1}' },
    });
    expect(replay.some((c) => c.choices?.[0]?.finish_reason === 'tool_calls')).toBe(true);
  });

  it('a call that returns neither chunks nor a Response is a ValidationError', async () => {
    cache = new DistributedCache({ prefix: uniquePrefix('rawllm') });
    const req = { model: 'y', temperature: 0, stream: true as const };
    const s = await cachedLLMCall(cache, req, () => 42 as unknown as Response);
    await expect(collect(s)).rejects.toSatisfy(isValidationError);
  });
});
