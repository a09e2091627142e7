/**
 * Connections stay bounded through a long outage (issue 13, defect 3 and the Connections rule).
 *
 * Each primitive talks to a private redis-server through its own fault proxy, so the proxy's
 * open-connection count is exactly the sockets that primitive holds, and the server's CLIENT
 * LIST (filtered by our connection name) is what all of them hold together. With traffic
 * running the whole time, the outage lasts 30 s: 15 s with the server stopped (connections
 * refused), then 15 s hung (the server is back, but the proxies accept TCP and never answer, as
 * in a network partition). The counts are taken before, sampled during, and taken after
 * recovery; every one stays within the bound docs/architecture.md documents.
 */
import { Redis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { DEFAULT_CONNECTION_NAME } from '../../src/core/connection.js';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { type ServerHandle, startRedisServer, uniquePrefix } from '../harness/env.js';
import { type FaultProxy, startFaultProxy } from '../harness/fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const OUTAGE_MS = 30_000;

// Steady-state connections per primitive (docs/architecture.md, "Connections"); during an
// outage one more may be in flight while a failed attempt is being torn down.
const BOUND = {
  cache: 2, // commands + the L1 invalidation subscriber
  worker: 2, // TaskQueue commands + the worker's blocking-read waiter
  session: 1,
  limiter: 1,
  circuit: 1,
  rate: 1,
  cost: 1,
  // The same two, created while Redis is already down (a pod restarted during the outage).
  lateCache: 2,
  lateWorker: 2,
} as const;
type Name = keyof typeof BOUND;
const NAMES = Object.keys(BOUND) as Name[];
const TOTAL = NAMES.reduce((n, k) => n + BOUND[k], 0);

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

async function clientList(server: ServerHandle): Promise<number> {
  const r = new Redis(server.port, '127.0.0.1', { connectionName: 'azs-counter' });
  try {
    const list = (await r.client('LIST')) as string;
    return list.split('\n').filter((l) => l.includes(` name=${DEFAULT_CONNECTION_NAME} `)).length;
  } finally {
    r.disconnect();
  }
}

it('each primitive holds a bounded number of connections before, during and after a 30 s outage', async () => {
  let server = await startRedisServer();
  const port = server.port;
  cleanups.push(() => server.stop());
  const px = {} as Record<Name, FaultProxy>;
  for (const n of NAMES) {
    px[n] = await startFaultProxy({ target: { host: '127.0.0.1', port } });
    cleanups.push(() => px[n].close());
  }
  const fast = { connectTimeout: 1, commandTimeout: 1 };

  const cache = new DistributedCache({
    redis: px.cache.url,
    prefix: uniquePrefix('conn'),
    local: { ttl: 30 },
    backendTimeout: 0.5,
  });
  cache.on('backendError', () => {});
  const queue = new TaskQueue({
    name: uniquePrefix('connq').slice(0, -1),
    redis: px.worker.url,
    redisOptions: fast,
  });
  const worker = new BackgroundWorker<number, number>({
    queue,
    visibilityTimeout: 5,
    handler: (n) => n,
  });
  worker.on('error', () => {});
  const sessions = new DistributedSessionManager({ redis: px.session.url, ...fast });
  const limiter = new ConcurrencyLimiter({
    concurrency: 4,
    key: uniquePrefix('connl'),
    redis: px.limiter.url,
    connection: fast,
  });
  const breaker = new CircuitBreaker({
    name: uniquePrefix('connc'),
    redis: px.circuit.url,
    syncInterval: 0.2,
    connection: fast,
  });
  const rate = new RateLimiter({
    key: uniquePrefix('connr'),
    redis: px.rate.url,
    requestsPerMinute: 100_000,
    connection: fast,
  });
  const costs = new CostOptimizer({
    redis: px.cost.url,
    prefix: uniquePrefix('connx'),
    hourlyBudget: 1e9,
    connection: fast,
  });
  cleanups.push(
    () => rate.close(),
    () => costs.close(),
    () => worker.stop({ timeout: 1 }),
    () => queue.close(),
    () => cache.close(),
    () => sessions.close(),
    () => limiter.close(),
    () => breaker.close(),
  );
  await worker.start();

  // Created once the outage has begun (below).
  let lateCache: DistributedCache | undefined;
  let lateQueue: TaskQueue | undefined;
  cleanups.push(
    () => lateCache?.close(),
    () => lateQueue?.close(),
  );
  const startLate = async () => {
    lateCache = new DistributedCache({
      redis: px.lateCache.url,
      prefix: uniquePrefix('conn'),
      local: { ttl: 30 },
      backendTimeout: 0.5,
    });
    lateCache.on('backendError', () => {});
    lateQueue = new TaskQueue({
      name: uniquePrefix('connq').slice(0, -1),
      redis: px.lateWorker.url,
      redisOptions: fast,
    });
    const w = new BackgroundWorker<number, number>({
      queue: lateQueue,
      visibilityTimeout: 5,
      handler: (n) => n,
    });
    w.on('error', () => {});
    cleanups.push(() => w.stop({ timeout: 1 }));
    // start() may fail while Redis is down; the worker keeps trying in the background.
    await w.start().catch(() => undefined);
  };

  // Traffic: every primitive is used every 100 ms; `ok` records which round trip succeeded last.
  // Cache reads miss L1 (new keys), so each one needs Redis and the invalidation subscription.
  const ok = {} as Record<Name, number>;
  const sid = sessions.newSessionId();
  let round = 0;
  let traffic = true;
  const mark = (n: Name) => () => {
    ok[n] = Date.now();
  };
  const loop = (async () => {
    while (traffic) {
      round++;
      await Promise.allSettled([
        cache
          .set(`k${round % 10}`, String(round))
          .then(() => cache.get(`miss${round}`))
          .then(() => cache.getOrSet(`g${round % 3}`, async () => 'v', { ttl: 5 }))
          .then(mark('cache')),
        queue.submitTask(round).then(mark('worker')),
        sessions.saveSession(sid, { messages: [], round }).then(mark('session')),
        limiter.run(async () => round).then(mark('limiter')),
        breaker.execute(async () => round).then(mark('circuit')),
        rate.tryAcquire().then(mark('rate')),
        costs.recordSpend(0.01).then(mark('cost')),
        lateCache
          ?.set(`k${round % 10}`, String(round))
          .then(() => lateCache?.get(`miss${round}`))
          .then(mark('lateCache')),
        lateQueue?.submitTask(round).then(mark('lateWorker')),
      ]);
      await sleep(100);
    }
  })();
  cleanups.push(async () => {
    traffic = false;
    await loop;
  });

  const allOkSince = async (since: number, timeoutMs: number) => {
    await expect
      .poll(() => names.filter((n) => (ok[n] ?? 0) <= since), { timeout: timeoutMs, interval: 200 })
      .toEqual([]);
  };
  let names: Name[] = NAMES.filter((n) => !n.startsWith('late'));
  const counts = () =>
    Object.fromEntries(NAMES.map((n) => [n, px[n].connections])) as Record<Name, number>;

  // Before: everything works; counts are within the bound.
  await allOkSince(Date.now(), 20_000);
  await sleep(1000);
  const before = counts();
  const beforeList = await clientList(server);
  for (const n of NAMES) expect(before[n], n).toBeLessThanOrEqual(BOUND[n]);
  expect(before.lateCache + before.lateWorker).toBe(0);
  expect(beforeList).toBeLessThanOrEqual(TOTAL);

  // During: sample the sockets each primitive holds.
  const peak = { ...before };
  const accepted0 = Object.fromEntries(NAMES.map((n) => [n, px[n].accepted])) as Record<
    Name,
    number
  >;
  const sample = setInterval(() => {
    for (const n of NAMES) peak[n] = Math.max(peak[n], px[n].connections);
  }, 50);
  cleanups.push(() => clearInterval(sample));
  const outageStart = Date.now();
  await server.stop();
  await startLate();
  names = NAMES;
  await sleep(OUTAGE_MS / 2 - (Date.now() - outageStart));
  for (const n of NAMES) px[n].setDown(true, 'hang');
  server = await startRedisServer({ port });
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)));
  const duringList = await clientList(server);
  clearInterval(sample);
  const reconnects = Object.fromEntries(
    NAMES.map((n) => [n, px[n].accepted - accepted0[n]]),
  ) as Record<Name, number>;

  // After: lift the fault, wait until every primitive works again, let the counts settle.
  for (const n of NAMES) px[n].setDown(false);
  const healed = Date.now();
  await allOkSince(healed, 30_000);
  await expect
    .poll(() => NAMES.filter((n) => px[n].connections > BOUND[n]), {
      timeout: 15_000,
      interval: 250,
    })
    .toEqual([]);
  const after = counts();
  await expect
    .poll(() => clientList(server), { timeout: 15_000, interval: 250 })
    .toBeLessThanOrEqual(TOTAL);
  // Give anything still reconnecting in the background time to show up, then count again.
  await sleep(3000);
  const settled = counts();
  const afterList = await clientList(server);

  console.log(
    JSON.stringify({ before, beforeList, peak, duringList, reconnects, after, settled, afterList }),
  );
  // No connection reached the server through the hung proxies.
  expect(duringList).toBe(0);
  for (const n of NAMES) {
    expect(peak[n], `${n} during the outage`).toBeLessThanOrEqual(BOUND[n] + 1);
    expect(settled[n], `${n} after recovery`).toBeLessThanOrEqual(BOUND[n]);
  }
  expect(afterList).toBeLessThanOrEqual(TOTAL);
}, 180_000);
