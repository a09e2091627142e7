import { afterAll, describe, expect, it } from 'vitest';
import { CancelledError, LimitExceededError, ValidationError } from '../../src/core/errors.js';
import { MemoryRateStore, RateLimiter } from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const backends = [
  { name: 'memory', redis: () => undefined },
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(backends)('RateLimiter: $name', ({ name, redis }) => {
  const made: RateLimiter[] = [];
  const mk = (o: Record<string, unknown>) => {
    const r = new RateLimiter({ redis: redis(), ...o } as never);
    made.push(r);
    return r;
  };
  afterAll(() => Promise.all(made.map((r) => r.close())));

  it('allows the per-minute burst, then throws LimitExceededError with retryAfter when maxWait is short', async () => {
    const rate = mk({ key: uniquePrefix('rate'), requestsPerMinute: 60, maxWait: 0 });
    // The budget refills one request per second while the burst runs, which takes longer on a
    // loaded machine: acquire until refused and check against the time the burst took.
    const t0 = performance.now();
    let allowed = 0;
    let e: unknown;
    while (allowed < 200) {
      e = await rate.acquire().then(
        () => undefined,
        (x: unknown) => x,
      );
      if (e !== undefined) break;
      allowed++;
    }
    const elapsed = (performance.now() - t0) / 1000;
    expect(e).toBeInstanceOf(LimitExceededError);
    expect(allowed).toBeGreaterThanOrEqual(60);
    expect(allowed).toBeLessThanOrEqual(60 + Math.ceil(elapsed));
    const retryAfter = (e as LimitExceededError).retryAfter as number;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(1);
    // What is left of the budget is what refilled during the burst beyond what it took: a fast
    // burst leaves almost nothing, so the wait is nearly a whole second.
    expect(retryAfter).toBeGreaterThanOrEqual(allowed - 59 - elapsed - 0.05);
  });

  it('waits for budget when it frees within maxWait', async () => {
    const rate = mk({ key: uniquePrefix('rate'), requestsPerMinute: 120 }); // 500 ms apart, burst 120
    let refused = { allowed: true, retryAfter: 0 };
    for (let i = 0; i < 200 && refused.allowed; i++) refused = await rate.tryAcquire();
    expect(refused.allowed).toBe(false);
    const t0 = Date.now();
    const { waited } = await rate.acquire();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(refused.retryAfter * 1000 - 50);
    expect(waited).toBeGreaterThan(0);
    expect(waited).toBeLessThan(0.6);
  });

  it('charges tokens: a token budget refuses a call that the request budget would allow', async () => {
    const rate = mk({
      key: uniquePrefix('rate'),
      requestsPerMinute: 1000,
      tokensPerMinute: 10_000,
      maxWait: 0,
    });
    await rate.acquire({ tokens: 8000 });
    const r = await rate.tryAcquire({ tokens: 3000 });
    expect(r.allowed).toBe(false);
    expect(r.retryAfter).toBeGreaterThan(5);
    expect((await rate.tryAcquire({ tokens: 2000 })).allowed).toBe(true);
  });

  it('penalize pauses the key for every instance sharing it', async () => {
    const key = uniquePrefix('rate');
    const a = mk({ key, requestsPerMinute: 1000, maxWait: 0 });
    const b = mk({ key, requestsPerMinute: 1000, maxWait: 0 });
    if (name === 'memory') {
      // In memory, "everyone" is whoever shares the store.
      const store = new MemoryRateStore();
      const c = mk({ key, requestsPerMinute: 1000, maxWait: 0, store });
      const d = mk({ key, requestsPerMinute: 1000, maxWait: 0, store });
      await c.penalize(0.6);
      const e = await d.acquire().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LimitExceededError);
      expect((e as LimitExceededError).retryAfter).toBeGreaterThan(0.3);
      await a.acquire();
      return;
    }
    await a.penalize(0.6);
    const e = await b.acquire().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LimitExceededError);
    expect((e as LimitExceededError).retryAfter).toBeGreaterThan(0.3);
    // With a long enough maxWait the caller waits the pause out instead.
    const t0 = Date.now();
    await b.acquire({ maxWait: 2 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('an aborted wait rejects with CancelledError', async () => {
    const rate = mk({ key: uniquePrefix('rate'), requestsPerMinute: 2 });
    while ((await rate.tryAcquire()).allowed) {}
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(rate.acquire({ signal: ac.signal, maxWait: 60 })).rejects.toBeInstanceOf(
      CancelledError,
    );
    // By default (maxWait 5 s) a 30 s wait is refused at once, with the time to retry.
    const t0 = Date.now();
    const e = await rate.acquire().catch((x: unknown) => x);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(e).toBeInstanceOf(LimitExceededError);
    expect((e as LimitExceededError).retryAfter).toBeGreaterThan(25);
  });
});

describe('RateLimiter bad input', () => {
  it('names the option', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'requestsPerMinute'],
      [{ requestsPerMinute: 0 }, 'requestsPerMinute'],
      [{ requestsPerMinute: Number.NaN }, 'requestsPerMinute'],
      [{ tokensPerMinute: -5 }, 'tokensPerMinute'],
      [{ requestsPerMinute: 5, maxWait: -1 }, 'maxWait'],
      [{ requestsPerMinute: 5, key: '' }, 'key'],
    ];
    for (const [o, option] of cases) {
      expect(() => new RateLimiter(o as never), JSON.stringify(o)).toThrow(
        expect.objectContaining({ option }),
      );
    }
    const rate = new RateLimiter({ tokensPerMinute: 100 });
    await expect(rate.acquire({ tokens: 101 })).rejects.toMatchObject({ option: 'tokens' });
    await expect(rate.acquire({ tokens: Number.NaN })).rejects.toBeInstanceOf(ValidationError);
    expect(() => rate.penalize(Number.NaN)).toThrow(ValidationError);
    expect(() => rate.penalize(-1)).toThrow(ValidationError);
  });
});
