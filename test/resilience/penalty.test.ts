/**
 * Defect 1 of issue 13: `penalize` had no upper bound. A reset time sent in milliseconds since
 * the epoch paused the fleet for millennia, 1e14 s left the Redis key without an expiry, and
 * 1e16 s made `acquire` spin on the backend. Externally supplied waits are now cut to
 * `maxPenalty` (300 s by default) and every key a script writes keeps an expiry.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { LimitExceededError, isValidationError } from '../../src/core/errors.js';
import { hashTag } from '../../src/core/keys.js';
import { RateLimiter } from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const backends = [
  { name: 'memory', redis: () => undefined },
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(backends)('RateLimiter.penalize bounds: $name', ({ name, redis }) => {
  const made: RateLimiter[] = [];
  const mk = (o: Record<string, unknown>) => {
    const r = new RateLimiter({
      redis: redis(),
      requestsPerMinute: 1000,
      maxWait: 0,
      ...o,
    } as never);
    made.push(r);
    return r;
  };
  afterAll(() => Promise.all(made.map((r) => r.close())));

  it.each([1.76e12, 1e14, 1e16, 1e300])(
    'penalize(%d) pauses for maxPenalty (300 s) at most, here and for another instance',
    async (seconds) => {
      const key = uniquePrefix('pen');
      const a = mk({ key });
      await a.penalize(seconds);
      const here = await a.tryAcquire();
      expect(here.allowed).toBe(false);
      expect(here.retryAfter).toBeGreaterThan(250);
      expect(here.retryAfter).toBeLessThanOrEqual(300);
      // acquire() refuses at once with a sane retryAfter: no negative wait, no spinning.
      const e = await a.acquire({ maxWait: 0.2 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LimitExceededError);
      expect((e as LimitExceededError).retryAfter).toBeLessThanOrEqual(300);
      if (name === 'memory') return;
      const b = mk({ key });
      const there = await b.tryAcquire();
      expect(there.allowed).toBe(false);
      expect(there.retryAfter).toBeGreaterThan(250);
      expect(there.retryAfter).toBeLessThanOrEqual(300);
    },
  );

  it('honours a smaller maxPenalty', async () => {
    const a = mk({ key: uniquePrefix('pen'), maxPenalty: 1 });
    expect(a.maxPenalty).toBe(1);
    await a.penalize(3600);
    const r = await a.tryAcquire();
    expect(r.allowed).toBe(false);
    expect(r.retryAfter).toBeLessThanOrEqual(1);
    // The pause really ends after maxPenalty: acquire waits it out within maxWait.
    const { waited } = await a.acquire({ maxWait: 5 });
    expect(waited).toBeLessThan(3);
  });

  it.each([Number.NaN, -1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '5', null])(
    'penalize(%s) is a ValidationError',
    (bad) => {
      const a = mk({ key: uniquePrefix('pen') });
      let err: unknown;
      try {
        void a.penalize(bad as number);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err)).toBe(true);
    },
  );

  it.each([Number.NaN, -1, Number.POSITIVE_INFINITY, 1e12, '300'])(
    'maxPenalty %s is a ValidationError naming it',
    (bad) => {
      let err: unknown;
      try {
        mk({ key: uniquePrefix('pen'), maxPenalty: bad });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err)).toBe(true);
      expect((err as { option?: string }).option).toBe('maxPenalty');
    },
  );
});

describe.each([
  { name: 'redis', cluster: false },
  { name: 'cluster', cluster: true },
])('rate keys always keep an expiry: $name', ({ cluster }) => {
  const open = () =>
    cluster ? new Redis.Cluster(servers().clusterNodes) : new Redis(servers().redisUrl);

  it.each([1.76e12, 1e14, 1e16])('after penalize(%d) the key has an expiry', async (seconds) => {
    const prefix = uniquePrefix('penx');
    const key = 'fleet';
    const client = open();
    const rate = new RateLimiter({ redis: client, prefix, key, requestsPerMinute: 100 });
    const raw = open();
    try {
      await rate.penalize(seconds);
      await rate.tryAcquire();
      const pttl = await raw.pttl(`${prefix}${hashTag(key)}`);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual((300 + 61) * 1000);
    } finally {
      await rate.close();
      client.disconnect();
      raw.disconnect();
    }
  });

  it('heals a key an older version left paused for millennia without an expiry', async () => {
    const prefix = uniquePrefix('penx');
    const key = 'old';
    const raw = open();
    const redisKey = `${prefix}${hashTag(key)}`;
    const client = open();
    const rate = new RateLimiter({ redis: client, prefix, key, requestsPerMinute: 100 });
    try {
      await raw.hset(redisKey, 'pause', '100000000000000000000000');
      expect(await raw.pttl(redisKey)).toBe(-1);
      const e = await rate.acquire({ maxWait: 1 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(LimitExceededError);
      const retryAfter = (e as LimitExceededError).retryAfter as number;
      expect(Number.isFinite(retryAfter)).toBe(true);
      expect(retryAfter).toBeGreaterThan(1);
      expect(await raw.pttl(redisKey)).toBeGreaterThan(0);
    } finally {
      await rate.close();
      await raw.del(redisKey);
      client.disconnect();
      raw.disconnect();
    }
  });
});
