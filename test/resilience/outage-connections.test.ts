/**
 * The connections rule of issue 13 for resilience and scaling: each primitive given a Redis URL
 * holds one connection, before, during and after an outage of any length. Here a 30-second
 * outage (the fault proxy holds connection attempts open without an answer: a partition) with traffic throughout; the server's CLIENT LIST
 * (by connection name) and the proxy's open connections are counted before, during and after.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { isBackendUnavailableError } from '../../src/core/errors.js';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { startFaultProxy } from '../harness/fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('connections during and after a 30-second outage', () => {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('breaker, limiters and cost optimizer hold one connection each, throughout', async () => {
    const u = new URL(servers().redisUrl);
    const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
    cleanups.push(() => proxy.close());
    const direct = new Redis(servers().redisUrl);
    cleanups.push(() => direct.disconnect());
    const connectionName = `azs-outage-${randomBytes(4).toString('hex')}`;
    const connection = { connectionName, commandTimeout: 1, connectTimeout: 1 };
    const key = uniquePrefix('out');
    const breaker = new CircuitBreaker({
      name: key,
      redis: proxy.url,
      connection,
      syncInterval: 0.1,
    });
    const limiter = new ConcurrencyLimiter({ concurrency: 5, redis: proxy.url, key, connection });
    const rate = new RateLimiter({ redis: proxy.url, key, requestsPerMinute: 1e6, connection });
    const cost = new CostOptimizer({ redis: proxy.url, prefix: key, connection });
    breaker.onError(() => {});
    limiter.on('error', () => {});
    rate.on('error', () => {});
    cleanups.push(
      () => breaker.close(),
      () => limiter.close(),
      () => rate.close(),
      () => cost.close(),
    );
    const PRIMITIVES = 4;
    const ours = async () =>
      String(await direct.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((l) => l.includes(`name=${connectionName}`)).length;

    const traffic = async () => {
      const results = await Promise.allSettled([
        breaker.execute(async () => 1),
        limiter.run(async () => 1),
        rate.acquire(),
        cost.recordSpend(0.01),
      ]);
      return results;
    };
    for (const r of await traffic()) expect(r.status).toBe('fulfilled');
    await breaker.sync();
    expect(await ours()).toBe(PRIMITIVES);
    expect(proxy.connections).toBe(PRIMITIVES);

    // 'hang': a partition. Connection attempts are accepted and held, so every attempt a
    // client leaves open shows up in proxy.connections.
    proxy.setDown(true, 'hang');
    let maxHeld = 0;
    let unavailable = 0;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      for (const r of await traffic()) {
        if (r.status === 'rejected' && isBackendUnavailableError(r.reason)) unavailable++;
      }
      maxHeld = Math.max(maxHeld, proxy.connections, await ours());
      await sleep(200);
    }
    expect(unavailable).toBeGreaterThan(0);
    expect(maxHeld).toBeGreaterThan(0); // the count does see held attempts
    expect(maxHeld).toBeLessThanOrEqual(PRIMITIVES);

    proxy.setDown(false);
    const deadline = Date.now() + 30_000;
    let ok = false;
    while (!ok && Date.now() < deadline) {
      ok = (await traffic()).every((r) => r.status === 'fulfilled');
      if (!ok) await sleep(200);
    }
    expect(ok).toBe(true);
    await sleep(500);
    expect(await ours()).toBeLessThanOrEqual(PRIMITIVES);
    expect(proxy.connections).toBeLessThanOrEqual(PRIMITIVES);
  }, 90_000);
});
