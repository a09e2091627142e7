/**
 * The "lost replies" rule of issue 13: ioredis resends a command whose reply was lost when it
 * reconnects. A limiter acquire and a spend increment must still apply exactly once: their
 * scripts record an operation id (declared in KEYS, same hash tag) and a resend finds it.
 * Proved with the fault proxy on standalone Redis and on Cluster.
 */
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import {
  type ProxiedCommand,
  startClusterFaultProxy,
  startFaultProxy,
} from '../harness/fault-proxy.js';

type Rig = {
  redis: () => Redis | Cluster;
  dropNextReply: (m: string | string[] | ((cmd: ProxiedCommand) => boolean)) => Promise<unknown>;
};

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function standalone(): Promise<Rig> {
  const u = new URL(servers().redisUrl);
  const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
  cleanups.push(() => proxy.close());
  return {
    redis: () => {
      const c = new Redis(proxy.url);
      cleanups.push(() => c.disconnect());
      return c;
    },
    dropNextReply: (m) => proxy.dropNextReply(m),
  };
}

async function cluster(): Promise<Rig> {
  const cp = await startClusterFaultProxy(servers().clusterNodes);
  cleanups.push(() => cp.close());
  return {
    redis: () => {
      const c = new Cluster(cp.startupNodes, { natMap: cp.natMap, retryDelayOnMoved: 50 });
      cleanups.push(() => c.disconnect());
      return c;
    },
    dropNextReply: (m) => cp.dropNextReply(m),
  };
}

const SCRIPT = ['EVALSHA', 'EVAL'];

describe.each([
  { name: 'standalone', rig: standalone },
  { name: 'cluster', rig: cluster },
])('exactly once under a lost reply: $name', ({ rig }) => {
  it('a rate limiter acquire whose reply was lost spends the budget once', async () => {
    const r = await rig();
    const rate = new RateLimiter({
      redis: r.redis(),
      key: uniquePrefix('lost'),
      requestsPerMinute: 10,
      maxWait: 0,
    });
    cleanups.push(() => rate.close());
    await rate.acquire(); // loads the script: the dropped command is the EVALSHA itself
    const dropped = r.dropNextReply(SCRIPT);
    await rate.acquire();
    expect(await dropped).toBeDefined();
    let more = 0;
    while ((await rate.tryAcquire()).allowed) more++;
    // 10 per minute as a burst: 2 spent above, so exactly 8 remain.
    expect(more).toBe(8);
  });

  it('a sliding-window acquire whose reply was lost spends the budget once', async () => {
    const r = await rig();
    const rate = new RateLimiter({
      redis: r.redis(),
      key: uniquePrefix('lost'),
      mode: 'sliding-window',
      requestsPerMinute: 10,
      maxWait: 0,
    });
    cleanups.push(() => rate.close());
    await rate.acquire();
    const dropped = r.dropNextReply(SCRIPT);
    const { grant } = await rate.acquire();
    expect(await dropped).toBeDefined();
    // The resent script found its op id and answered with the first grant time.
    expect(Number.isFinite(grant.at)).toBe(true);
    let more = 0;
    while ((await rate.tryAcquire()).allowed) more++;
    expect(more).toBe(8);
  });

  it('a token refund (settle) whose reply was lost is applied once', async () => {
    const r = await rig();
    const rate = new RateLimiter({
      redis: r.redis(),
      key: uniquePrefix('lost'),
      mode: 'sliding-window',
      tokensPerMinute: 600,
      maxWait: 0,
    });
    cleanups.push(() => rate.close());
    const a = await rate.acquire({ tokens: 200 });
    const b = await rate.acquire({ tokens: 200 });
    await rate.settle(b.grant, 150); // loads the script; 350 counted
    const dropped = r.dropNextReply(SCRIPT);
    await rate.settle(a.grant, 100); // 100 back: 250 counted (150 if applied twice)
    expect(await dropped).toBeDefined();
    expect((await rate.tryAcquire({ tokens: 350 })).allowed).toBe(true);
    expect((await rate.tryAcquire({ tokens: 1 })).allowed).toBe(false);
  });

  it('a spend increment whose reply was lost is counted once', async () => {
    const r = await rig();
    const o = new CostOptimizer({ redis: r.redis(), prefix: uniquePrefix('lost') });
    cleanups.push(() => o.close());
    await o.recordSpend(1, { category: 'llm' });
    const dropped = r.dropNextReply(SCRIPT);
    expect(await o.recordSpend(2, { category: 'llm' })).toBe(3);
    expect(await dropped).toBeDefined();
    const dropped2 = r.dropNextReply(SCRIPT);
    expect(await o.recordSpend(4)).toBe(7);
    expect(await dropped2).toBeDefined();
    expect(await o.currentSpend()).toBe(7);
    expect(await o.spendByCategory()).toEqual({ llm: 3 });
  });

  it('a distributed limiter acquire whose reply was lost holds one lease, released after', async () => {
    const r = await rig();
    const limiter = new ConcurrencyLimiter({
      concurrency: 1,
      redis: r.redis(),
      key: uniquePrefix('lost'),
    });
    cleanups.push(() => limiter.close());
    await limiter.run(async () => 'warm');
    // run() sends its release without waiting for the reply; inFlight() comes after it on the
    // same connection, so the reply dropped below is the next acquire's, never warm's release.
    expect(await limiter.inFlight()).toBe(0);
    const dropped = r.dropNextReply(SCRIPT);
    expect(await limiter.run(async () => 'ran')).toBe('ran');
    expect(await dropped).toBeDefined();
    expect(await limiter.run(async () => 'again')).toBe('again');
    // 'again' also releases without awaiting the reply, and on a Cluster the release may still be
    // on its way: wait for 0 for up to 5 s. A lease leaked by the lost reply would hold its slot
    // for the whole leaseTtl (30 s), so it still fails here.
    const until = Date.now() + 5000;
    let held = await limiter.inFlight();
    while (held !== 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      held = await limiter.inFlight();
    }
    expect(held).toBe(0);
  });

  it("a half-open trial claim whose reply was lost is still this instance's trial", async () => {
    const r = await rig();
    const b = new CircuitBreaker({
      name: uniquePrefix('lost'),
      redis: r.redis(),
      failureThreshold: 1,
      recoveryTimeout: 0.2,
      syncInterval: 3600,
      trialTimeout: 60,
    });
    cleanups.push(() => b.close());
    const openAndWait = async () => {
      await b.execute(() => Promise.reject(new Error('down'))).catch(() => {});
      await b.sync();
      expect(b.state).toBe('open');
      await new Promise((res) => setTimeout(res, 1100)); // trials are at most one a second
    };
    // One full cycle first, so the trial script is cached on the node (the dropped reply must
    // be the script's own, not a NOSCRIPT that would be resent harmlessly).
    await openAndWait();
    expect(await b.execute(async () => 'first trial')).toBe('first trial');
    await b.sync();
    expect(b.state).toBe('closed');
    await openAndWait();
    // The trial claim: EVALSHA sha 2 key gen owner ttl.
    const dropped = r.dropNextReply(
      (cmd) => (cmd.name === 'EVALSHA' || cmd.name === 'EVAL') && cmd.args.length === 6,
    );
    expect(await b.execute(async () => 'trial ran')).toBe('trial ran');
    expect(await dropped).toBeDefined();
    await b.sync();
    expect(b.state).toBe('closed');
  });
});
