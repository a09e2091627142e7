/**
 * The additive methods the dashboard reads: RateLimiter.budget() (memory and Redis, read-only)
 * and CostOptimizer.hourlySpend() (memory and Redis).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import { RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

let client: Redis;
beforeAll(() => {
  client = new Redis(servers().redisUrl);
});
afterAll(() => {
  client.disconnect();
});

describe.each(['memory', 'redis'] as const)('RateLimiter.budget() (%s)', (kind) => {
  const make = () =>
    new RateLimiter({
      ...(kind === 'redis' ? { redis: client, prefix: uniquePrefix('rb') } : {}),
      key: 'k',
      requestsPerMinute: 600,
      tokensPerMinute: 60_000,
    });

  it('reports the budget left without spending it', async () => {
    const r = make();
    try {
      expect(await r.budget()).toEqual({ requestsLeft: 600, tokensLeft: 60_000, pausedFor: 0 });
      for (let i = 0; i < 100; i++)
        expect((await r.tryAcquire({ tokens: 100 })).allowed).toBe(true);
      const a = await r.budget();
      const b = await r.budget();
      // 600/min refills 10 requests and 1000 tokens per second: allow a second of refill.
      expect(a.requestsLeft).toBeGreaterThanOrEqual(500);
      expect(a.requestsLeft).toBeLessThanOrEqual(511);
      expect(a.tokensLeft).toBeGreaterThanOrEqual(50_000);
      expect(a.tokensLeft).toBeLessThanOrEqual(51_100);
      expect(b.requestsLeft!).toBeGreaterThanOrEqual(a.requestsLeft!); // reading spent nothing
      await r.penalize(30);
      const p = await r.budget();
      expect(p.pausedFor).toBeGreaterThan(25);
      expect(p.pausedFor).toBeLessThanOrEqual(30);
    } finally {
      await r.close();
    }
  });

  it('says null for a budget that is not set', async () => {
    const r = new RateLimiter({
      ...(kind === 'redis' ? { redis: client, prefix: uniquePrefix('rb') } : {}),
      requestsPerMinute: 10,
    });
    try {
      expect((await r.budget()).tokensLeft).toBe(null);
      expect((await r.budget()).requestsLeft).toBe(10);
    } finally {
      await r.close();
    }
  });
});

describe.each(['memory', 'redis'] as const)('CostOptimizer.hourlySpend() (%s)', (kind) => {
  it('gives the last hours, oldest first, the current one last', async () => {
    const HOUR = 3_600_000;
    let now = Date.UTC(2026, 10, 29, 12, 30);
    const prefix = uniquePrefix('hs');
    const o = new CostOptimizer({
      ...(kind === 'redis' ? { redis: client, prefix } : {}),
      now: () => now,
    });
    try {
      await o.recordSpend(1);
      now += HOUR;
      await o.recordSpend(2.5);
      now += 2 * HOUR;
      await o.recordSpend(4);
      const h = await o.hourlySpend(4);
      expect(h.map((x) => x.total)).toEqual([1, 2.5, 0, 4]);
      expect(h.at(-1)!.hourStartMs).toBe(o.hourStartMs());
      expect(h[0]!.hourStartMs).toBe(o.hourStartMs() - 3 * HOUR);
      expect(await o.hourlySpend()).toHaveLength(24);
      for (const bad of [0, 26, 1.5, Number.NaN, '3']) {
        const e = await o.hourlySpend(bad as number).catch((x: unknown) => x);
        expect(isValidationError(e)).toBe(true);
      }
    } finally {
      await o.close();
    }
  });
});
