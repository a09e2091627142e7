/**
 * `redis: { sentinels, name }` through the one resolver, for every module that takes a Redis:
 * a real primary + replica found through a real `redis-sentinel`, with passwords on both the
 * servers and the sentinel. Also: validation of the Sentinel input, descriptions without
 * secrets, and connections made for subscribers/blocking reads keeping the Sentinel config.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import {
  RedisConnection,
  describeClient,
  isDurabilityError,
  isValidationError,
  resolveRedis,
} from '../../src/core/index.js';
import { ExpressSessionStore } from '../../src/express/index.js';
import { CircuitBreaker, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { uniquePrefix } from '../harness/env.js';
import { type SentinelGroup, startSentinelGroup } from '../harness/sentinel.js';

const PASSWORD = 'srv-secret-Pw1';
const SENTINEL_PASSWORD = 'sen-secret-Pw2';

let group: SentinelGroup;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  group = await startSentinelGroup({
    replicas: 1,
    sentinels: 1,
    password: PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
  });
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await group?.stop();
}, 30_000);

function sentinelInput() {
  return {
    sentinels: group.sentinels,
    name: group.name,
    password: PASSWORD,
    sentinelPassword: SENTINEL_PASSWORD,
  };
}

/** A plain client on the current primary, for checking what the modules wrote. */
async function primary(): Promise<Redis> {
  const port = await group.primaryPort();
  const c = new Redis({ host: '127.0.0.1', port, password: PASSWORD });
  cleanups.push(async () => c.disconnect());
  return c;
}

async function eventually(fn: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return fn();
}

describe('Sentinel input', () => {
  const bad: [string, unknown, string][] = [
    ['no sentinels', { sentinels: [], name: 'm' }, 'redis.sentinels'],
    ['sentinels not an array', { sentinels: 'h:1', name: 'm' }, 'redis.sentinels'],
    ['port 0', { sentinels: [{ host: 'h', port: 0 }], name: 'm' }, 'redis.sentinels'],
    ['port 70000', { sentinels: [{ host: 'h', port: 70000 }], name: 'm' }, 'redis.sentinels'],
    ['port NaN', { sentinels: [{ host: 'h', port: Number.NaN }], name: 'm' }, 'redis.sentinels'],
    ['port as text', { sentinels: [{ host: 'h', port: '26379' }], name: 'm' }, 'redis.sentinels'],
    ['empty host', { sentinels: [{ host: '', port: 1 }], name: 'm' }, 'redis.sentinels'],
    ['null entry', { sentinels: [null], name: 'm' }, 'redis.sentinels'],
    ['no name', { sentinels: [{ host: 'h', port: 1 }] }, 'redis.name'],
    ['empty name', { sentinels: [{ host: 'h', port: 1 }], name: '' }, 'redis.name'],
    ['name with space', { sentinels: [{ host: 'h', port: 1 }], name: 'a b' }, 'redis.name'],
    ['__proto__ name', { sentinels: [{ host: 'h', port: 1 }], name: '__proto__' }, 'redis.name'],
    [
      'constructor name',
      { sentinels: [{ host: 'h', port: 1 }], name: 'constructor' },
      'redis.name',
    ],
    [
      'numeric password',
      { sentinels: [{ host: 'h', port: 1 }], name: 'm', password: 1 },
      'redis.password',
    ],
    [
      'object sentinelPassword',
      { sentinels: [{ host: 'h', port: 1 }], name: 'm', sentinelPassword: {} },
      'redis.sentinelPassword',
    ],
    ['bad role', { sentinels: [{ host: 'h', port: 1 }], name: 'm', role: 'primary' }, 'redis.role'],
    ['nodes and sentinels', { sentinels: [{ host: 'h', port: 1 }], nodes: [], name: 'm' }, 'redis'],
  ];
  it.each(bad)('rejects %s with a ValidationError naming the option', (_, input, option) => {
    let err: unknown;
    try {
      resolveRedis(input as never);
    } catch (e) {
      err = e;
    }
    expect(isValidationError(err)).toBe(true);
    expect((err as { option: string }).option).toBe(option);
  });

  it('does not read a name inherited from the prototype (parsed JSON with __proto__)', () => {
    const input = JSON.parse('{"sentinels":[{"host":"h","port":1}],"__proto__":{"name":"m"}}');
    expect(() => resolveRedis(input)).toThrow(/redis\.name/);
  });

  it('describes the target without passwords, as given and from an ioredis client', async () => {
    const conn = resolveRedis(sentinelInput()) as RedisConnection;
    expect(conn.description).toBe(
      `sentinel(${group.name}@${group.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')})`,
    );
    const client = new Redis({ ...sentinelInput(), lazyConnect: true });
    const d = describeClient(client);
    expect(d.description).toBe(conn.description);
    expect(d.secrets.sort()).toEqual([PASSWORD, SENTINEL_PASSWORD].sort());
    client.disconnect();
    await conn.close();
  });

  it('an unreachable Sentinel fails with BackendUnavailableError naming no password', async () => {
    const conn = new RedisConnection(
      { sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm', password: 'hunter2-x' },
      { connectTimeout: 1 },
    );
    const err = await conn.get().catch((e) => e);
    expect(err.code).toBe('AZS_BACKEND_UNAVAILABLE');
    expect(JSON.stringify({ m: err.message, c: err.context })).not.toContain('hunter2-x');
    await conn.close();
  });
});

describe('every module through Sentinel', () => {
  it('connection: reaches the primary; duplicate() (subscribers, blocking reads) too', async () => {
    const conn = resolveRedis(sentinelInput()) as RedisConnection;
    cleanups.push(() => conn.close());
    const c = (await conn.get()) as Redis;
    expect((await c.call('ROLE')) as unknown[]).toContain('master');
    const dup = (await conn.duplicate()) as Redis;
    expect(((await dup.call('ROLE')) as unknown[])[0]).toBe('master');
    expect(dup.options.sentinels?.length).toBe(group.sentinels.length);
    // A client the user passed in: ioredis's duplicate() keeps its Sentinel options.
    const mine = new Redis({ ...sentinelInput() });
    cleanups.push(async () => mine.disconnect());
    const wrapped = new RedisConnection(mine);
    const dup2 = (await wrapped.duplicate()) as Redis;
    expect(dup2.options.sentinels).toEqual(mine.options.sentinels);
    expect(dup2.options.name).toBe(group.name);
    expect(((await dup2.call('ROLE')) as unknown[])[0]).toBe('master');
    await wrapped.close();
  });

  it('an owned client that ioredis ended is started again by the next call', async () => {
    const conn = resolveRedis(sentinelInput()) as RedisConnection;
    cleanups.push(() => conn.close());
    const c = (await conn.get()) as Redis;
    // What ioredis does when a Sentinel master lookup is cut short: status 'end', no retry.
    const ended = new Promise((r) => c.once('end', r));
    c.disconnect();
    await ended;
    expect(c.status).toBe('end');
    expect(await (await conn.get()).ping()).toBe('PONG');
    const m = new DistributedSessionManager({
      redis: sentinelInput(),
      prefix: uniquePrefix('end'),
    });
    cleanups.push(() => m.close());
    await m.appendMessage('s', { role: 'user', content: 'a' });
    const sc = (m.store as unknown as { connection: RedisConnection }).connection.client as Redis;
    const scEnded = new Promise((r) => sc.once('end', r));
    sc.disconnect();
    await scEnded;
    expect(await m.appendMessage('s', { role: 'user', content: 'b' })).toBe(2);
  });

  it('cache: L2 writes land on the primary; invalidation pub/sub reaches another instance', async () => {
    const prefix = uniquePrefix('sen-cache');
    const a = new DistributedCache({ redis: sentinelInput(), prefix, local: { ttl: 30 } });
    const b = new DistributedCache({ redis: sentinelInput(), prefix, local: { ttl: 30 } });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await a.ready();
    await b.ready();
    await a.set('k', 'v1');
    expect(await (await primary()).exists(`${prefix}k`)).toBe(1);
    expect(await b.get('k')).toBe('v1'); // now in b's L1
    await a.set('k', 'v2');
    expect(await eventually(async () => (await b.get('k')) === 'v2')).toBe(true);
  });

  it('session: appends through Sentinel, with durability on a real replica', async () => {
    const prefix = uniquePrefix('sen-sess');
    const m = new DistributedSessionManager({
      redis: sentinelInput(),
      prefix,
      durability: { replicas: 1, timeout: 5 },
    });
    cleanups.push(() => m.close());
    expect(await m.appendMessage('s1', { role: 'user', content: 'a' })).toBe(1);
    expect(await m.appendMessage('s1', { role: 'user', content: 'b' })).toBe(2);
    expect((await m.getSession('s1')).messages).toHaveLength(2);
    // Two replicas asked for, one exists: the write is applied, the acknowledgement refused.
    const strict = new DistributedSessionManager({
      redis: sentinelInput(),
      prefix,
      durability: { replicas: 2, timeout: 0.2 },
    });
    cleanups.push(() => strict.close());
    const err = await strict.appendMessage('s1', { role: 'user', content: 'c' }).catch((e) => e);
    expect(isDurabilityError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'AZS_DURABILITY', acknowledged: 1, required: 2 });
    expect(err.message).toMatch(/may or may not survive/);
    expect((await m.getSession('s1')).messages).toHaveLength(3);
  });

  it('worker: submit, a worker blocking-reads and completes, with durability', async () => {
    const q = new TaskQueue({
      redis: sentinelInput(),
      name: uniquePrefix('senq').slice(0, -1),
      durability: { replicas: 1, timeout: 5 },
    });
    cleanups.push(() => q.close());
    const w = new BackgroundWorker<{ n: number }, number>({
      queue: q,
      handler: (d) => d.n * 2,
      visibilityTimeout: 5,
    });
    cleanups.push(() => w.stop({ timeout: 0 }));
    await w.start();
    // Submitted after the worker is idle in its blocking read: the wake-up must reach it.
    await new Promise((r) => setTimeout(r, 300));
    const id = await q.submitTask({ n: 21 });
    expect(await q.waitForResult(id, { timeout: 10 })).toBe(42);
    expect(await q.getTask(id)).toMatchObject({ status: 'completed' });
  });

  it('resilience: rate limiter and shared circuit breaker state through Sentinel', async () => {
    const prefix = uniquePrefix('sen-res');
    const rate = new RateLimiter({
      redis: sentinelInput(),
      prefix,
      key: 'k',
      requestsPerMinute: 2,
      maxWait: 0,
    });
    cleanups.push(() => rate.close());
    expect((await rate.tryAcquire()).allowed).toBe(true);
    expect((await rate.tryAcquire()).allowed).toBe(true);
    expect((await rate.tryAcquire()).allowed).toBe(false);
    const keys = await (await primary()).keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(0);
    const opts = {
      redis: sentinelInput(),
      prefix,
      name: 'svc',
      failureThreshold: 1,
      syncInterval: 0.2,
    };
    const breaker = new CircuitBreaker(opts);
    const other = new CircuitBreaker(opts);
    cleanups.push(
      () => breaker.close(),
      () => other.close(),
    );
    await other.sync();
    await breaker.execute(() => Promise.reject(new Error('boom'))).catch(() => undefined);
    expect(breaker.state).toBe('open');
    // The other instance never failed: it learns the open state from Redis.
    expect(await eventually(async () => other.state === 'open')).toBe(true);
    await expect(other.execute(async () => 'x')).rejects.toMatchObject({
      code: 'AZS_CIRCUIT_OPEN',
    });
  });

  it('scaling: spend shared through Sentinel, with durability', async () => {
    const name = uniquePrefix('sen-cost').slice(4, -1);
    const a = new CostOptimizer({ redis: sentinelInput(), name, durability: { replicas: 1 } });
    const b = new CostOptimizer({ redis: sentinelInput(), name });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await a.recordSpend(1.5);
    await b.recordSpend(2);
    expect(await a.currentSpend()).toBe(3.5);
  });

  it('frameworks: the Express session store builds its manager on Sentinel', async () => {
    const store = new ExpressSessionStore({
      redis: sentinelInput(),
      prefix: uniquePrefix('sen-x'),
    });
    cleanups.push(() => store.close());
    await new Promise<void>((resolve, reject) =>
      store.set('sid1', { cookie: {}, user: 'u' }, (e?: unknown) => (e ? reject(e) : resolve())),
    );
    const got = await new Promise<unknown>((resolve, reject) =>
      store.get('sid1', (e: unknown, s?: unknown) => (e ? reject(e) : resolve(s))),
    );
    expect(got).toMatchObject({ user: 'u' });
  });

  // Last: it moves the primary. The old primary stays up as a replica and keeps its client
  // connections, answering writes with READONLY; clients must move to the new one.
  it('a SENTINEL FAILOVER (old primary demoted, still up): every module moves to the new primary', async () => {
    const prefix = uniquePrefix('sen-fo');
    const m = new DistributedSessionManager({ redis: sentinelInput(), prefix });
    const q = new TaskQueue({ redis: sentinelInput(), name: `${prefix.slice(4, -1)}` });
    const c = new DistributedCache({ redis: sentinelInput(), prefix, onBackendError: 'throw' });
    cleanups.push(
      () => m.close(),
      () => q.close(),
      () => c.close(),
    );
    await m.appendMessage('s', { role: 'user', content: 'before' });
    await q.submitTask({ n: 1 });
    await c.set('k', 'before');
    const oldPort = await group.primaryPort();
    const s0 = group.sentinels[0] as { port: number };
    const admin = new Redis({ host: '127.0.0.1', port: s0.port, password: SENTINEL_PASSWORD });
    cleanups.push(async () => admin.disconnect());
    await admin.call('SENTINEL', 'FAILOVER', group.name);
    const newPort = await group.waitForNewPrimary(oldPort, 30_000);
    expect(newPort).not.toBe(oldPort);
    // Until Sentinel has turned the old primary into a replica it still takes writes, which the
    // resync then drops (what durability guards against); wait for the demotion first.
    const old = new Redis({ host: '127.0.0.1', port: oldPort, password: PASSWORD });
    cleanups.push(async () => old.disconnect());
    expect(
      await eventually(async () => ((await old.call('ROLE')) as unknown[])[0] === 'slave', 20_000),
    ).toBe(true);
    // Writes fail (typed) for a moment at most, then land on the new primary.
    const writes = [
      () => m.appendMessage('s', { role: 'user', content: 'after' }),
      () => q.submitTask({ n: 2 }),
      () => c.set('k', 'after'),
    ];
    for (const w of writes) {
      expect(
        await eventually(async () => {
          try {
            await w();
            return true;
          } catch (e) {
            expect((e as { code?: string }).code).toMatch(/^AZS_/);
            return false;
          }
        }, 20_000),
      ).toBe(true);
    }
    const fresh = new Redis({ host: '127.0.0.1', port: newPort, password: PASSWORD });
    cleanups.push(async () => fresh.disconnect());
    expect(await fresh.get(`${prefix}k`)).toBe('after');
    expect((await m.getSession('s')).messages).toHaveLength(2);
  });
});
