/**
 * API contract of DistributedCache, `cached`, LLM caching, written from the issue text
 * only: names, options, defaults and return shapes as the issue gives them, on memory, standalone
 * Redis and Redis Cluster.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import {
  AzscaleError,
  BackendUnavailableError,
  DistributedCache,
  ValidationError,
  ValueTooLargeError,
  cached,
  cachedLLMCall,
  llmCacheKey,
} from '../../src/index.js';
import * as cacheModule from '../../src/cache/index.js';
import { uniquePrefix } from '../harness/env.js';
import { type Raw, contractBackends, sleep } from '../contract/backends.js';

const backends = contractBackends('memory');

describe('cache API contract: exports and defaults', () => {
  it('is exported from azscale and azscale/cache', () => {
    expect(cacheModule.DistributedCache).toBe(root.DistributedCache);
    expect(cacheModule.cached).toBe(root.cached);
    expect(cacheModule.llmCacheKey).toBe(root.llmCacheKey);
    expect(cacheModule.cachedLLMCall).toBe(root.cachedLLMCall);
    expect(cacheModule.BackendUnavailableError).toBe(BackendUnavailableError);
    expect(cacheModule.ValidationError).toBe(ValidationError);
  });

  it('ttl defaults to 3600 seconds and onBackendError to degrade', async () => {
    const c = new DistributedCache();
    expect(c.ttl).toBe(3600);
    expect(c.onBackendError).toBe('degrade');
    await c.close();
  });
});

for (const b of backends) {
  describe(`cache API contract: DistributedCache on ${b.name}`, () => {
    let raw: Raw | undefined;
    const open: DistributedCache[] = [];
    const make = (o: Record<string, unknown> = {}) => {
      const redis = b.redis();
      const c = new DistributedCache({
        ...(redis === undefined ? {} : { redis }),
        prefix: uniquePrefix('i4'),
        ...o,
      });
      open.push(c);
      return c;
    };
    beforeAll(() => {
      raw = b.raw();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });
    afterAll(() => {
      raw?.disconnect();
    });

    it('get/set/delete: string | null as the seed', async () => {
      const c = make();
      expect(await c.get('missing')).toBeNull();
      await c.set('k', 'v1');
      expect(await c.get('k')).toBe('v1');
      await c.set('k', 'v2', 60);
      expect(await c.get('k')).toBe('v2');
      await c.delete('k');
      expect(await c.get('k')).toBeNull();
    });

    it('set(key, value, ttl) expires after ttl seconds', async () => {
      // 1 s, not less: a loaded machine can take a few hundred ms between two round trips.
      const c = make({ ttl: 1 });
      await c.set('short', 'x');
      await c.set('long', 'y', 30);
      expect(await c.get('short')).toBe('x');
      await sleep(1300);
      expect(await c.get('short')).toBeNull();
      expect(await c.get('long')).toBe('y');
    });

    it('getBatch: (string | null)[] in the order of keys, keys in many slots', async () => {
      const c = make();
      const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
      await c.setBatch(
        keys.filter((_, i) => i % 3 !== 0).map((k) => [k, `v:${k}`] as [string, string]),
      );
      const got = await c.getBatch(keys);
      expect(got).toHaveLength(keys.length);
      keys.forEach((k, i) => {
        expect(got[i]).toBe(i % 3 === 0 ? null : `v:${k}`);
      });
      // Reversed order, duplicates, and an empty batch.
      const rev = [...keys].reverse().concat(['key-1', 'key-1']);
      const got2 = await c.getBatch(rev);
      rev.forEach((k, i) => {
        const n = Number(k.slice(4));
        expect(got2[i]).toBe(n % 3 === 0 ? null : `v:${k}`);
      });
      expect(await c.getBatch([])).toEqual([]);
    });

    it('setBatch(entries, ttl) honours the ttl', async () => {
      const c = make();
      await c.setBatch(
        [
          ['a', '1'],
          ['b', '2'],
        ],
        1,
      );
      expect(await c.getBatch(['a', 'b', 'c'])).toEqual(['1', '2', null]);
      await sleep(1300);
      expect(await c.getBatch(['a', 'b'])).toEqual([null, null]);
    });

    it('getOrSet(key, loader, ttl?) is single-flight: concurrent misses run the loader once', async () => {
      const c = make();
      let calls = 0;
      const loader = async () => {
        calls++;
        await sleep(50);
        return 'loaded';
      };
      const results = await Promise.all(
        Array.from({ length: 25 }, () => c.getOrSet('sf', loader, 60)),
      );
      expect(results).toEqual(Array(25).fill('loaded'));
      expect(calls).toBe(1);
      expect(await c.get('sf')).toBe('loaded');
      // A hit does not call the loader.
      expect(await c.getOrSet('sf', loader)).toBe('loaded');
      expect(calls).toBe(1);
    });

    it('getOrSet: a failing loader rejects every waiter and caches nothing', async () => {
      const c = make();
      let calls = 0;
      const boom = new Error('loader failed');
      const loader = async () => {
        calls++;
        await sleep(20);
        throw boom;
      };
      const settled = await Promise.allSettled(
        Array.from({ length: 5 }, () => c.getOrSet('fail', loader)),
      );
      expect(settled.every((s) => s.status === 'rejected')).toBe(true);
      expect(calls).toBe(1);
      expect(await c.get('fail')).toBeNull();
      expect(await c.getOrSet('fail', () => 'ok')).toBe('ok');
    });

    it('getJSON / setJSON: typed JSON values', async () => {
      const c = make();
      const value = { a: 1, b: [true, null, 'x'], c: { d: 'é' } };
      await c.setJSON('j', value);
      expect(await c.getJSON<typeof value>('j')).toEqual(value);
      expect(await c.getJSON('nope')).toBeNull();
      expect(await c.get('j')).toBe(JSON.stringify(value));
    });

    it('bad input: typed errors', async () => {
      const c = make({ maxValueBytes: 100 });
      await expect(c.get('')).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('', 'v')).rejects.toBeInstanceOf(ValidationError);
      await expect(c.getBatch(['ok', ''])).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('k', 42 as unknown as string)).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('k', { a: 1 } as unknown as string)).rejects.toBeInstanceOf(
        ValidationError,
      );
      await expect(c.set('k', 'v', 0)).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('k', 'v', -1)).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('k', 'v', Number.NaN)).rejects.toBeInstanceOf(ValidationError);
      await expect(c.set('k', 'x'.repeat(500))).rejects.toBeInstanceOf(ValueTooLargeError);
      expect(() => new DistributedCache({ ttl: 0 })).toThrow(ValidationError);
      expect(() => new DistributedCache({ ttl: -5 })).toThrow(ValidationError);
      expect(
        () => new DistributedCache({ onBackendError: 'explode' as unknown as 'throw' }),
      ).toThrow(ValidationError);
      expect(await c.get('k')).toBeNull();
    });

    it('cached(fn, { ttl, cache }) caches by arguments; object key order does not matter', async () => {
      const c = make();
      let calls = 0;
      const fn = async (q: { a: number; b: string }, n: number) => {
        calls++;
        return { sum: q.a + n, b: q.b };
      };
      const fast = cached(fn, { ttl: 3600, cache: c });
      expect(await fast({ a: 1, b: 'x' }, 2)).toEqual({ sum: 3, b: 'x' });
      expect(await fast({ b: 'x', a: 1 }, 2)).toEqual({ sum: 3, b: 'x' });
      expect(calls).toBe(1);
      expect(await fast({ a: 1, b: 'x' }, 3)).toEqual({ sum: 4, b: 'x' });
      expect(calls).toBe(2);
    });

    it('cached(fn, { key }) uses the key function; cache.delete(key) invalidates', async () => {
      const c = make();
      let calls = 0;
      const fast = cached(
        async (id: string) => {
          calls++;
          return `user:${id}:${calls}`;
        },
        { ttl: 60, cache: c, key: (id: string) => `user-${id}` },
      );
      expect(await fast('7')).toBe('user:7:1');
      expect(await fast('7')).toBe('user:7:1');
      expect(calls).toBe(1);
      expect(await c.delete('user-7')).toBe(true);
      expect(await fast('7')).toBe('user:7:2');
    });

    it('concurrent cached misses for one key run the function once', async () => {
      const c = make();
      let calls = 0;
      const fast = cached(
        async (x: number) => {
          calls++;
          await sleep(40);
          return x * 2;
        },
        { ttl: 60, cache: c },
      );
      const out = await Promise.all(Array.from({ length: 20 }, () => fast(21)));
      expect(out).toEqual(Array(20).fill(42));
      expect(calls).toBe(1);
    });

    it('@cached({ ttl: 3600 }) (TC39) on async and sync methods keeps `this`', async () => {
      const c = make();
      class Service {
        calls = 0;
        constructor(readonly factor: number) {}

        @cached({ ttl: 3600, cache: c })
        async expensiveOperation(a: string, b: number): Promise<string> {
          this.calls++;
          return `${a}:${b * this.factor}`;
        }

        @cached({ ttl: 3600, cache: c })
        syncOperation(a: number): number {
          this.calls++;
          return a + this.factor;
        }
      }
      const s = new Service(10);
      expect(await s.expensiveOperation('x', 2)).toBe('x:20');
      expect(await s.expensiveOperation('x', 2)).toBe('x:20');
      expect(s.calls).toBe(1);
      expect(await s.expensiveOperation('y', 2)).toBe('y:20');
      expect(s.calls).toBe(2);
      expect(await s.syncOperation(1)).toBe(11);
      expect(await s.syncOperation(1)).toBe(11);
      expect(s.calls).toBe(3);
    });

    it('cached: arguments that cannot be serialized give a typed error unless key is given', async () => {
      const c = make();
      const fast = cached(async (v: unknown) => String(typeof v), { cache: c });
      await expect(fast(10n)).rejects.toBeInstanceOf(AzscaleError);
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(fast(cyclic)).rejects.toBeInstanceOf(AzscaleError);
      const keyed = cached(async (v: unknown) => String(typeof v), {
        cache: c,
        key: () => 'fixed-key',
      });
      expect(await keyed(10n)).toBe('bigint');
    });

    it('cachedLLMCall(cache, request, call) caches temperature-0 requests only by default', async () => {
      const c = make();
      let calls = 0;
      const call = async (req: { model: string; temperature?: number }) => {
        calls++;
        return { text: `answer ${calls}`, model: req.model };
      };
      const req = {
        model: 'gpt-4o-mini',
        temperature: 0,
        messages: [{ role: 'user', content: 'hi' }],
      };
      const a = await cachedLLMCall(c, req, call);
      const b2 = await cachedLLMCall(
        c,
        { ...req, messages: [{ content: 'hi', role: 'user' }] },
        call,
      );
      expect(a).toEqual({ text: 'answer 1', model: 'gpt-4o-mini' });
      expect(b2).toEqual(a);
      expect(calls).toBe(1);
      expect(await c.getJSON(llmCacheKey(req))).toEqual(a);

      const hot = { ...req, temperature: 0.7 };
      await cachedLLMCall(c, hot, call);
      await cachedLLMCall(c, hot, call);
      expect(calls).toBe(3);
      expect(await c.get(llmCacheKey(hot))).toBeNull();
    });

    if (b.redis() !== undefined) {
      it('values live in Redis under prefix + key, shared by instances', async () => {
        const c1 = make();
        const c2 = make({ prefix: c1.prefix });
        await c1.set('shared', 'v', 120);
        expect(await c2.get('shared')).toBe('v');
        const r = raw as Raw;
        expect(await r.get(`${c1.prefix}shared`)).toBe('v');
        const ttl = await r.ttl(`${c1.prefix}shared`);
        expect(ttl).toBeGreaterThan(100);
        expect(ttl).toBeLessThanOrEqual(120);
        await c1.set('default-ttl', 'v');
        expect(await r.ttl(`${c1.prefix}default-ttl`)).toBeGreaterThan(3590);
      });

      it('local L1: a set/delete on one instance removes the key from the L1 of the others', async () => {
        const c1 = make({ local: { max: 100, ttl: 60 } });
        const c2 = make({ prefix: c1.prefix, local: { max: 100, ttl: 60 } });
        await c1.set('k', 'v1');
        expect(await c2.get('k')).toBe('v1'); // now in c2's L1
        await c1.set('k', 'v2');
        const deadline = Date.now() + 2000;
        let seen = await c2.get('k');
        while (seen !== 'v2' && Date.now() < deadline) {
          await sleep(20);
          seen = await c2.get('k');
        }
        expect(seen).toBe('v2');
        await c1.delete('k');
        let gone = await c2.get('k');
        while (gone !== null && Date.now() < deadline + 2000) {
          await sleep(20);
          gone = await c2.get('k');
        }
        expect(gone).toBeNull();
      });

      it('getOrSet with lock: true runs the loader once across instances', async () => {
        const prefix = uniquePrefix('i4');
        const caches = [make({ prefix }), make({ prefix }), make({ prefix })];
        let calls = 0;
        const loader = async () => {
          calls++;
          await sleep(100);
          return 'once';
        };
        const out = await Promise.all(
          caches.flatMap((c) => [
            c.getOrSet('locked', loader, { ttl: 60, lock: true }),
            c.getOrSet('locked', loader, { ttl: 60, lock: true }),
          ]),
        );
        expect(out).toEqual(Array(6).fill('once'));
        expect(calls).toBe(1);
      });
    }
  });
}

describe('cache API contract: cached with the default process-wide cache', () => {
  it('cached(fn, { ttl }) without cache uses one in-memory cache', async () => {
    let calls = 0;
    const tag = uniquePrefix('dflt');
    const f = cached(
      async (x: number) => {
        calls++;
        return `${tag}${x}`;
      },
      { ttl: 3600, name: tag },
    );
    expect(await f(1)).toBe(`${tag}1`);
    expect(await f(1)).toBe(`${tag}1`);
    expect(calls).toBe(1);
  });

  it('@cached with no cache option', async () => {
    class Svc {
      calls = 0;
      @cached({ ttl: 3600 })
      async op(a: string): Promise<string> {
        this.calls++;
        return a.toUpperCase();
      }
    }
    const s = new Svc();
    const tag = uniquePrefix('m');
    expect(await s.op(tag)).toBe(tag.toUpperCase());
    expect(await s.op(tag)).toBe(tag.toUpperCase());
    expect(s.calls).toBe(1);
  });
});

describe('cache API contract: llmCacheKey', () => {
  const base = {
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'What is 2+2?' }],
    temperature: 0,
  };

  it('builds llm: + sha256 hex of a canonical JSON (field order does not matter)', () => {
    const k = llmCacheKey(base);
    expect(k).toMatch(/^llm:[0-9a-f]{64}$/);
    expect(
      llmCacheKey({
        temperature: 0,
        messages: [{ content: 'What is 2+2?', role: 'user' }],
        model: 'gpt-4o',
      }),
    ).toBe(k);
    expect(llmCacheKey(base)).toBe(k);
  });

  it('every sampling parameter, the model, messages and tools change the key', () => {
    const k = llmCacheKey(base);
    const variants: Record<string, unknown>[] = [
      { model: 'gpt-4o-mini' },
      { messages: [{ role: 'user', content: 'What is 2+3?' }] },
      { tools: [{ type: 'function', function: { name: 'calc' } }] },
      { temperature: 0.5 },
      { top_p: 0.9 },
      { max_tokens: 10 },
      { stop: ['\n'] },
      { seed: 42 },
      { tool_choice: 'auto' },
      { response_format: { type: 'json_object' } },
    ];
    const keys = new Set([k]);
    for (const v of variants) {
      const kv = llmCacheKey({ ...base, ...v } as typeof base);
      expect(kv).toMatch(/^llm:[0-9a-f]{64}$/);
      expect(kv).not.toBe(k);
      keys.add(kv);
    }
    expect(keys.size).toBe(variants.length + 1);
  });

  it('bad request: typed error', () => {
    expect(() => llmCacheKey(null as unknown as typeof base)).toThrow(AzscaleError);
  });
});

describe('cache API contract: Redis down', () => {
  it('degrade (default): reads miss, writes are dropped, cached calls go through, backendError; no wait past backendTimeout', async () => {
    const c = new DistributedCache({
      redis: 'redis://127.0.0.1:1',
      backendTimeout: 0.5,
      prefix: uniquePrefix('down'),
    });
    const errors: unknown[] = [];
    c.on('backendError', (e) => errors.push(e));
    try {
      let t0 = Date.now();
      expect(await c.get('k')).toBeNull();
      expect(Date.now() - t0).toBeLessThan(1500);
      t0 = Date.now();
      await c.set('k', 'v');
      expect(await c.getBatch(['a', 'b'])).toEqual([null, null]);
      let calls = 0;
      const f = cached(
        async (x: number) => {
          calls++;
          return x + 1;
        },
        { cache: c, ttl: 60 },
      );
      expect(await f(1)).toBe(2);
      expect(await f(1)).toBe(2);
      expect(calls).toBe(2);
      expect(await c.getOrSet('g', () => 'loaded')).toBe('loaded');
      expect(Date.now() - t0).toBeLessThan(6 * 1500);
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
  });

  it('throw: BackendUnavailableError', async () => {
    const c = new DistributedCache({
      redis: 'redis://127.0.0.1:1',
      onBackendError: 'throw',
      backendTimeout: 0.5,
    });
    try {
      const t0 = Date.now();
      await expect(c.get('k')).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(c.set('k', 'v')).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await c.close();
    }
  });
});
