/**
 * Failure semantics when Redis goes away: limiters fail closed with BackendUnavailableError
 * (never run unbounded), a shared breaker keeps working on its local state and reports the
 * backend error.
 */
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, CircuitOpenError } from '../../src/core/errors.js';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { startRedisServer, uniquePrefix } from '../harness/env.js';

describe('resilience with Redis down', () => {
  it('limiters reject with BackendUnavailableError; the breaker falls back to local state', async () => {
    const server = await startRedisServer();
    const connection = { connectTimeout: 1, commandTimeout: 1 };
    const limiter = new ConcurrencyLimiter({
      concurrency: 2,
      redis: server.url,
      key: uniquePrefix('u'),
      connection,
    });
    const rate = new RateLimiter({
      redis: server.url,
      key: uniquePrefix('u'),
      requestsPerMinute: 100,
      connection,
    });
    const breaker = new CircuitBreaker({
      name: uniquePrefix('u'),
      redis: server.url,
      failureThreshold: 1,
      syncInterval: 0.05,
      connection,
    });
    const errors: unknown[] = [];
    breaker.onError((e) => errors.push(e));
    try {
      await expect(limiter.run(() => 'up')).resolves.toBe('up');
      await rate.acquire();
      await expect(breaker.execute(async () => 'up')).resolves.toBe('up');

      await server.kill('SIGKILL');

      let ran = false;
      const e1 = await limiter
        .run(() => {
          ran = true;
        })
        .catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(BackendUnavailableError);
      expect(ran).toBe(false);
      expect(limiter.pendingCount).toBe(0);
      await expect(rate.acquire()).rejects.toBeInstanceOf(BackendUnavailableError);

      // The breaker still counts failures and opens locally.
      await expect(
        breaker.execute(async () => {
          throw new Error('dependency down too');
        }),
      ).rejects.toThrow('dependency down too');
      await expect(breaker.execute(async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
      await new Promise((r) => setTimeout(r, 200));
      expect(errors.length).toBeGreaterThan(0);
      expect(errors[0]).toBeInstanceOf(BackendUnavailableError);
      // Messages never carry secrets; here at least they name the server.
      expect(String((errors[0] as Error).message)).toContain('127.0.0.1');
    } finally {
      await Promise.all([limiter.close(), rate.close(), breaker.close()]);
      await server.stop().catch(() => {});
    }
  });
});

describe('resilience Redis ownership and auth', () => {
  it('a client passed in is used and never closed by the primitive', async () => {
    const { Redis } = await import('ioredis');
    const { servers } = await import('../harness/env.js');
    const client = new Redis(servers().redisUrl);
    const limiter = new ConcurrencyLimiter({
      concurrency: 1,
      redis: client,
      key: uniquePrefix('own'),
    });
    const rate = new RateLimiter({
      redis: client,
      key: uniquePrefix('own'),
      requestsPerMinute: 10,
    });
    try {
      await expect(limiter.run(() => 'ran')).resolves.toBe('ran');
      await rate.acquire();
    } finally {
      await limiter.close();
      await rate.close();
    }
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    client.disconnect();
  });

  it('a wrong password fails with BackendUnavailableError that does not contain it', async () => {
    const { servers } = await import('../harness/env.js');
    const url = new URL(servers().redisAuthUrl);
    url.password = 'not-the-password-s3cret';
    const limiter = new ConcurrencyLimiter({
      concurrency: 1,
      redis: url.toString(),
      key: uniquePrefix('auth'),
      connection: { connectTimeout: 2 },
    });
    try {
      const e = await limiter.run(() => 1).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(BackendUnavailableError);
      expect(
        JSON.stringify({ m: (e as Error).message, c: (e as BackendUnavailableError).context }),
      ).not.toContain('not-the-password-s3cret');
    } finally {
      await limiter.close();
    }
  });
});
