/**
 * The sliding-window mode of RateLimiter (issue 15: "never exceed the limit by more than one
 * request per minute", literally) and token corrections (`settle`/`adjust`/`refund`), on
 * memory, standalone Redis and Cluster, with several limiters sharing one key at once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import {
  MemoryRateStore,
  type RateGrant,
  RateLimiter,
  type RateLimiterOptions,
} from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const backends = [
  { name: 'memory', redis: () => undefined },
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

/** The most granted in any window of `windowMs` (a window's worst case ends at a grant). */
function worstWindow(grants: { at: number; tokens: number }[], windowMs: number): number {
  const sorted = [...grants].sort((a, b) => a.at - b.at);
  let worst = 0;
  let lo = 0;
  let sum = 0;
  for (const g of sorted) {
    sum += g.tokens;
    while ((sorted[lo] as { at: number }).at <= g.at - windowMs) {
      sum -= (sorted[lo] as { tokens: number }).tokens;
      lo++;
    }
    worst = Math.max(worst, sum);
  }
  return worst;
}

/** `n` limiters on one key hammering it for `ms`; returns every grant with its store time. */
async function hammer(
  limiters: RateLimiter[],
  ms: number,
  tokens: () => number,
): Promise<{ at: number; tokens: number }[]> {
  const grants: { at: number; tokens: number }[] = [];
  const end = Date.now() + ms;
  await Promise.all(
    limiters.flatMap((rate) =>
      [0, 1].map(async () => {
        while (Date.now() < end) {
          const t = tokens();
          try {
            const { grant } = await rate.acquire({
              tokens: t,
              maxWait: Math.max(0, (end - Date.now()) / 1000),
            });
            grants.push({ at: grant.at as number, tokens: t });
          } catch {
            return; // the next grant would come after the end
          }
        }
      }),
    ),
  );
  return grants;
}

describe.each(backends)('RateLimiter sliding window: $name', ({ name, redis }) => {
  const made: RateLimiter[] = [];
  const shared = new MemoryRateStore();
  const mk = (o: Partial<RateLimiterOptions>) => {
    const r = new RateLimiter({
      ...(name === 'memory' ? { store: shared } : { redis: redis() }),
      mode: 'sliding-window',
      ...o,
    } as RateLimiterOptions);
    made.push(r);
    return r;
  };
  afterAll(() => Promise.all(made.map((r) => r.close())));

  it('in any window, the tokens granted across 4 limiters sharing a key stay within the budget', async () => {
    const key = uniquePrefix('win');
    // 100 tokens per 2 s window.
    const limiters = [0, 1, 2, 3].map(() => mk({ key, tokensPerMinute: 3000, window: 2 }));
    expect(limiters[0]?.tokenCapacity).toBe(100);
    const grants = await hammer(limiters, 5000, () => 10 + Math.floor(Math.random() * 30));
    expect(grants.every((g) => Number.isFinite(g.at))).toBe(true);
    expect(worstWindow(grants, 2000)).toBeLessThanOrEqual(100);
    // The limit bit: 5 s of 8 callers would grant thousands of tokens unlimited. Grants within
    // 5 s touch at most 4 windows of 2 s (about 3 in practice).
    const total = grants.reduce((n, g) => n + g.tokens, 0);
    expect(total).toBeLessThanOrEqual(400);
    expect(total).toBeGreaterThanOrEqual(150);
  });

  it('requests: in any window at most the window share of requestsPerMinute', async () => {
    const key = uniquePrefix('win');
    const limiters = [0, 1, 2].map(() => mk({ key, requestsPerMinute: 300, window: 1 }));
    const grants = await hammer(limiters, 3500, () => 0);
    expect(
      worstWindow(
        grants.map((g) => ({ at: g.at, tokens: 1 })),
        1000,
      ),
    ).toBeLessThanOrEqual(5);
    expect(grants.length).toBeGreaterThanOrEqual(10);
    expect(grants.length).toBeLessThanOrEqual(25);
  });

  it('a refused call spends nothing and its retryAfter is when the oldest slot frees', async () => {
    const key = uniquePrefix('win');
    const rate = mk({ key, tokensPerMinute: 600, window: 60 }); // 600 per 60 s
    expect((await rate.tryAcquire({ tokens: 500 })).allowed).toBe(true);
    const r = await rate.tryAcquire({ tokens: 200 });
    expect(r.allowed).toBe(false);
    expect(r.retryAfter).toBeGreaterThan(55);
    expect(r.retryAfter).toBeLessThanOrEqual(62);
    expect((await rate.tryAcquire({ tokens: 100 })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
  });

  it('settle refunds unused tokens to the budget, once per grant', async () => {
    const rate = mk({ key: uniquePrefix('win'), tokensPerMinute: 600 });
    const { grant } = await rate.acquire({ tokens: 400 });
    expect(grant.tokens).toBe(400);
    await rate.settle(grant, 100); // 300 back: 100 used
    await rate.settle(grant, 100); // the same grant again: ignored
    await rate.refund(300, { grant }); // still the same grant: ignored
    expect((await rate.tryAcquire({ tokens: 500 })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
  });

  it('settle charges tokens used beyond the estimate, even past the budget; later calls wait', async () => {
    const rate = mk({ key: uniquePrefix('win'), tokensPerMinute: 600, window: 2 }); // 20 / 2 s
    const { grant } = await rate.acquire({ tokens: 5 });
    await rate.settle(grant, 25); // 20 more: 25 counted, over the window's 20
    const r = await rate.tryAcquire({ tokens: 1 });
    expect(r.allowed).toBe(false);
    expect(r.retryAfter).toBeGreaterThan(1.5);
    expect(r.retryAfter).toBeLessThanOrEqual(2.1);
  });

  it('adjust without a grant is counted each time, now', async () => {
    const rate = mk({ key: uniquePrefix('win'), tokensPerMinute: 600 });
    await rate.adjust(200);
    await rate.adjust(200);
    expect((await rate.tryAcquire({ tokens: 200 })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
    await rate.adjust(-150);
    expect((await rate.tryAcquire({ tokens: 150 })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
  });

  it('GCRA mode corrects too: a refund gives tokens back, a charge takes them', async () => {
    const rate = mk({ key: uniquePrefix('gcra'), mode: 'gcra', tokensPerMinute: 600 });
    const { grant } = await rate.acquire({ tokens: 600 });
    expect((await rate.tryAcquire({ tokens: 100 })).allowed).toBe(false);
    await rate.settle(grant, 300);
    expect((await rate.tryAcquire({ tokens: 250 })).allowed).toBe(true);
    await rate.adjust(200);
    const r = await rate.tryAcquire({ tokens: 100 });
    expect(r.allowed).toBe(false);
    expect(r.retryAfter).toBeGreaterThan(10);
  });
});

describe('the GCRA mode is not a sliding window (why the mode exists)', () => {
  it('a burst then the refill grants well over the budget in one window', async () => {
    const store = new MemoryRateStore();
    const limiters = [0, 1].map(
      () => new RateLimiter({ store, key: 'k', tokensPerMinute: 3000, window: 2 }),
    );
    const grants = await hammer(limiters, 2500, () => 10);
    expect(worstWindow(grants, 2000)).toBeGreaterThan(150);
  });
});

describe('sliding window and corrections: bad input', () => {
  it('names the option', async () => {
    const bad: [Partial<RateLimiterOptions>, string][] = [
      [{ mode: 'fixed' as never }, 'mode'],
      [{ window: 0 }, 'window'],
      [{ window: 0.5 }, 'window'],
      [{ window: Number.NaN }, 'window'],
      [{ window: 86_401 }, 'window'],
      [{ window: '60' as never }, 'window'],
      [
        { mode: 'sliding-window', requestsPerMinute: 0.5, tokensPerMinute: undefined },
        'requestsPerMinute',
      ],
    ];
    for (const [o, option] of bad) {
      let e: unknown;
      try {
        new RateLimiter({ tokensPerMinute: 100, ...o });
      } catch (x) {
        e = x;
      }
      expect(e, JSON.stringify(o)).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).option).toBe(option);
    }
    const rate = new RateLimiter({ mode: 'sliding-window', tokensPerMinute: 600, window: 6 });
    // 60 tokens per 6 s window: 61 could never fit.
    await expect(rate.acquire({ tokens: 61 })).rejects.toMatchObject({ option: 'tokens' });
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, '5', undefined]) {
      await expect(rate.adjust(v as never)).rejects.toMatchObject({ option: 'tokens' });
    }
    await expect(rate.refund(-5)).rejects.toMatchObject({ option: 'tokens' });
    const { grant } = await rate.acquire({ tokens: 10 });
    for (const g of [
      null,
      {},
      { id: '', tokens: 1, at: 1 },
      { id: 'x', tokens: Number.NaN },
      { ...grant, at: 'now' },
    ]) {
      await expect(rate.settle(g as RateGrant, 5)).rejects.toMatchObject({ option: 'grant' });
    }
    await expect(rate.settle(grant, -1)).rejects.toMatchObject({ option: 'actualTokens' });
    await expect(rate.settle(grant, Number.NaN)).rejects.toMatchObject({ option: 'actualTokens' });
    await rate.close();
    await expect(rate.settle(grant, 5)).rejects.toMatchObject({ code: 'AZS_CLOSED' });
  });

  it('a store without adjust() refuses corrections with a typed error', async () => {
    const inner = new MemoryRateStore();
    const store = {
      take: inner.take.bind(inner),
      pause: inner.pause.bind(inner),
      close: async () => {},
    };
    const rate = new RateLimiter({ store, tokensPerMinute: 600 });
    await expect(rate.adjust(5)).rejects.toMatchObject({ option: 'store' });
    // Without a token budget there is nothing to correct.
    const req = new RateLimiter({ store, requestsPerMinute: 5 });
    await expect(req.adjust(5)).resolves.toBeUndefined();
  });
});
