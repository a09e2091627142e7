/**
 * A cache holds a bounded number of Redis connections during and after an outage of any
 * length: one command connection and, with an L1 and invalidation, one subscriber. Subscription
 * retries during the outage must not leave connections behind that all come back at once.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { startRedisServer } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function clients(url: string): Promise<number> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await probe.connect();
    const list = String(await probe.client('LIST'));
    // Everyone but the probe itself.
    return list.split('\n').filter((l) => l.trim() !== '').length - 1;
  } finally {
    probe.disconnect();
  }
}

describe('connections during and after an outage', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('a 6 s outage with traffic: 2 connections before and after', async () => {
    const first = await startRedisServer();
    cleanups.push(() => first.stop());
    const cache = new DistributedCache({
      redis: first.url,
      local: { ttl: 30 },
      backendTimeout: 0.3,
      circuit: { threshold: 3, halfOpenAfter: 0.5 },
    });
    cleanups.push(() => cache.close());
    await cache.ready();
    await cache.set('k', 'v');
    expect(await clients(first.url)).toBe(2);

    await first.kill('SIGKILL');
    const until = performance.now() + 6000;
    let calls = 0;
    while (performance.now() < until) {
      await Promise.all([cache.get(`k${calls % 7}`), cache.set(`w${calls}`, 'x')]);
      calls++;
      await sleep(20);
    }
    expect(calls).toBeGreaterThan(50);

    const again = await startRedisServer({ port: first.port });
    cleanups.push(() => again.stop());
    // Service resumes: the subscription is back (ready() checks it) and writes reach Redis.
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await sleep(100);
      ok = await cache.ready().then(
        () => true,
        () => false,
      );
    }
    expect(ok).toBe(true);
    // Give clients that were left reconnecting time to show up.
    await sleep(3000);
    expect(await clients(again.url)).toBe(2);
  }, 60_000);

  it('a cache started during a 6 s outage: 2 connections once Redis is back', async () => {
    const first = await startRedisServer();
    cleanups.push(() => first.stop());
    await first.kill('SIGKILL');
    const cache = new DistributedCache({
      redis: first.url,
      local: { ttl: 30 },
      backendTimeout: 0.3,
      circuit: { threshold: 3, halfOpenAfter: 0.5 },
    });
    cleanups.push(() => cache.close());
    const until = performance.now() + 6000;
    let calls = 0;
    while (performance.now() < until) {
      await Promise.all([cache.get(`k${calls % 7}`), cache.set(`w${calls}`, 'x')]);
      calls++;
      await sleep(20);
    }
    const again = await startRedisServer({ port: first.port });
    cleanups.push(() => again.stop());
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      await sleep(100);
      ok = await cache.ready().then(
        () => true,
        () => false,
      );
    }
    expect(ok).toBe(true);
    await sleep(3000);
    expect(await clients(again.url)).toBe(2);
  }, 60_000);
});
