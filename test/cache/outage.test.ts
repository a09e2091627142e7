/**
 * Redis dies (or hangs) mid-run: decorated calls keep succeeding by calling through, no call
 * waits longer than backendTimeout, the failure is reported as an event and a metric, the
 * circuit stops hammering the dead server, and service resumes when Redis is back.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { type CacheBackendErrorEvent, DistributedCache, cached } from '../../src/cache/index.js';
import { isBackendUnavailableError } from '../../src/core/errors.js';
import type { MetricsSink } from '../../src/core/metrics.js';
import { startRedisServer } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recordingMetrics() {
  const counts = new Map<string, number>();
  const key = (n: string, l?: Record<string, string>) => (l ? `${n}${JSON.stringify(l)}` : n);
  const sink: MetricsSink = {
    counter: (n, l) => ({
      inc: (v = 1) => counts.set(key(n, l), (counts.get(key(n, l)) ?? 0) + v),
    }),
    histogram: () => ({ observe() {} }),
    gauge: () => ({ set() {}, inc() {}, dec() {} }),
  };
  return { sink, get: (n: string, l?: Record<string, string>) => counts.get(key(n, l)) ?? 0 };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

// backendTimeout, seconds. Large enough that the slack below (a loaded 2-core machine's late
// timers: 150 ms is little room) stays smaller than the bound itself, so a call that spent
// the budget twice (2 s) still fails the check.
const BOUND = 1;
const SLACK_MS = 700;

describe('Redis outage', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('SIGKILL mid-run: decorated calls keep succeeding within the bound, then recover', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const m = recordingMetrics();
    const cache = new DistributedCache({
      redis: own.url,
      backendTimeout: BOUND,
      circuit: { threshold: 3, halfOpenAfter: 0.3 },
      metrics: m.sink,
    });
    cleanups.push(() => cache.close());
    const events: CacheBackendErrorEvent[] = [];
    let opened = 0;
    cache.on('backendError', (e) => events.push(e));
    cache.on('circuitOpen', () => opened++);

    let calls = 0;
    const lookup = cached(
      async (id: number) => {
        calls++;
        return { id, at: calls };
      },
      { cache, ttl: 60, name: 'lookup' },
    );

    // Warm: 5 distinct keys cached in Redis.
    for (let i = 0; i < 5; i++) await lookup(i);
    expect(calls).toBe(5);
    for (let i = 0; i < 5; i++) await lookup(i);
    expect(calls).toBe(5);

    const durations: number[] = [];
    const results: unknown[] = [];
    const deadline = performance.now() + 4000;
    for (let round = 0; round < 60 && performance.now() < deadline; round++) {
      if (round === 10) await own.kill('SIGKILL');
      const batch = await Promise.all(Array.from({ length: 5 }, (_, i) => timed(() => lookup(i))));
      for (const b of batch) {
        durations.push(b.ms);
        results.push(b.value);
      }
      await sleep(10);
    }
    // Every call succeeded with the right value, and none waited past the bound.
    expect(results).toHaveLength(durations.length);
    for (const [i, r] of results.entries()) expect((r as { id: number }).id).toBe(i % 5);
    expect(Math.max(...durations)).toBeLessThan(BOUND * 1000 + SLACK_MS);
    // After the kill the function was called through.
    expect(calls).toBeGreaterThan(5);
    // Reported: event, metric, and the circuit opened (so Redis was not asked on every call).
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.degraded && isBackendUnavailableError(e.error))).toBe(true);
    expect(m.get('cache_backend_errors_total')).toBe(events.length);
    expect(opened).toBeGreaterThan(0);
    expect(events.some((e) => /circuit open/.test(e.error.message))).toBe(true);

    // Plain API during the outage: reads miss, writes are dropped, nothing throws.
    expect((await timed(() => cache.get('x'))).value).toBeNull();
    await cache.set('x', '1');
    expect(await cache.getBatch(['a', 'b'])).toEqual([null, null]);

    // Redis comes back (empty) on the same port: caching resumes once the circuit closes.
    const again = await startRedisServer({ port: own.port });
    cleanups.push(() => again.stop());
    let resumed = false;
    for (let i = 0; i < 60 && !resumed; i++) {
      await sleep(100);
      await cache.set('probe', 'ok');
      resumed = (await cache.get('probe')) === 'ok';
    }
    expect(resumed).toBe(true);
    const before = calls;
    await lookup(100);
    await lookup(100);
    expect(calls).toBe(before + 1);
  });

  it("onBackendError: 'throw' gives BackendUnavailableError within the bound", async () => {
    const own = await startRedisServer();
    const cache = new DistributedCache({
      redis: own.url,
      backendTimeout: BOUND,
      onBackendError: 'throw',
    });
    cleanups.push(() => cache.close());
    await cache.set('k', 'v');
    await own.kill('SIGKILL');
    for (const op of [
      () => cache.get('k'),
      () => cache.set('k', 'w'),
      () => cache.getBatch(['k']),
    ]) {
      const t0 = performance.now();
      const e = await op().then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(isBackendUnavailableError(e)).toBe(true);
      expect(performance.now() - t0).toBeLessThan(BOUND * 1000 + SLACK_MS);
    }
    const f = cached(async () => 1, { cache, name: 'f' });
    expect(isBackendUnavailableError(await f().catch((x: unknown) => x))).toBe(true);
  });

  it('a hung server (SIGSTOP) and a server that never answers are bounded too', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const admin = new Redis(own.url);
    const info = await admin.info('server');
    admin.disconnect();
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    expect(pid).toBeGreaterThan(0);
    const cache = new DistributedCache({ redis: own.url, backendTimeout: BOUND, local: true });
    cleanups.push(() => cache.close());
    // The invalidation subscription clears L1 when it (re)starts; let it start before L1 fills.
    await cache.ready();
    let calls = 0;
    const f = cached(
      async (x: number) => {
        calls++;
        return x * 2;
      },
      { cache, name: 'hung' },
    );
    expect(await f(1)).toBe(2);
    expect(await f(1)).toBe(2); // L1 hit
    expect(calls).toBe(1);
    process.kill(pid, 'SIGSTOP');
    cleanups.push(async () => process.kill(pid, 'SIGCONT'));
    try {
      const r = await Promise.all([2, 3, 4].map((x) => timed(() => f(x))));
      expect(r.map((x) => x.value)).toEqual([4, 6, 8]);
      for (const x of r) expect(x.ms).toBeLessThan(BOUND * 1000 + SLACK_MS);
      expect(calls).toBe(4); // called through
      // L1 still answers while Redis hangs.
      expect((await timed(() => f(1))).value).toBe(2);
      expect(calls).toBe(4);
      const w = await timed(() => cache.set('k', 'v'));
      expect(w.ms).toBeLessThan(BOUND * 1000 + SLACK_MS);
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    // Connecting is bounded as well: a TCP server that accepts and never replies.
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          mute.close(() => r());
        }),
    );
    const port = (mute.address() as net.AddressInfo).port;
    const dead = new DistributedCache({
      redis: `redis://127.0.0.1:${port}`,
      backendTimeout: BOUND,
    });
    cleanups.push(() => dead.close());
    const g = cached(async (x: number) => x + 1, { cache: dead, name: 'g' });
    const r1 = await timed(() => g(1));
    expect(r1.value).toBe(2);
    expect(r1.ms).toBeLessThan(BOUND * 1000 + SLACK_MS);
    const r2 = await timed(() => dead.ready().catch((e: unknown) => e));
    expect(isBackendUnavailableError(r2.value)).toBe(true);
    expect(r2.ms).toBeLessThan(BOUND * 1000 + SLACK_MS);
  });
});
