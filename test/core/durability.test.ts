/**
 * `durability: { replicas, timeout }`: validation, refusal without Redis, a real primary with a
 * real replica (WAIT confirms; WAITAOF falls back on Redis 7.0), servers without replicas
 * (standalone and Cluster: DurabilityError, the write applied), and a reconnect between write
 * and WAIT never reported as confirmed.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DurabilityPolicy,
  durableWrite,
  resolveDurability,
} from '../../src/core/durability.js';
import { DurabilityError, isDurabilityError, isValidationError } from '../../src/core/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager, MemorySessionStore } from '../../src/session/index.js';
import { TaskQueue } from '../../src/worker/index.js';
import { type ServerHandle, servers, startRedisServer, uniquePrefix } from '../harness/env.js';

function validationOption(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isValidationError(e)) return e.option;
    throw e;
  }
  return undefined;
}

describe('durability option', () => {
  it.each([
    [{ replicas: -1 }, 'durability.replicas'],
    [{ replicas: 1.5 }, 'durability.replicas'],
    [{ replicas: Number.NaN }, 'durability.replicas'],
    [{ replicas: '1' }, 'durability.replicas'],
    [{ replicas: 101 }, 'durability.replicas'],
    [{}, 'durability.replicas'],
    [{ replicas: 1, timeout: 0 }, 'durability.timeout'],
    [{ replicas: 1, timeout: -1 }, 'durability.timeout'],
    [{ replicas: 1, timeout: Number.NaN }, 'durability.timeout'],
    [{ replicas: 1, timeout: '1' }, 'durability.timeout'],
    [{ replicas: 1, timeout: 1e9 }, 'durability.timeout'],
    [{ replicas: 1, aof: 'yes' }, 'durability.aof'],
    [1, 'durability'],
    [[1], 'durability'],
    ['replicas=1', 'durability'],
  ])('rejects %j naming %s', (value, option) => {
    expect(validationOption(() => resolveDurability(value))).toBe(option);
  });

  it('reads own fields only and turns replicas 0 into "off"', () => {
    expect(resolveDurability(undefined)).toBeUndefined();
    expect(resolveDurability({ replicas: 0 })).toBeUndefined();
    expect(resolveDurability({ replicas: 2, timeout: 0.25 })).toEqual({
      replicas: 2,
      timeoutMs: 250,
      aof: false,
    });
    expect(resolveDurability({ replicas: 1 })?.timeoutMs).toBe(1000);
    const inherited = JSON.parse('{"__proto__": {"replicas": 1}}');
    expect(validationOption(() => resolveDurability(inherited))).toBe('durability.replicas');
  });

  it('is refused where there is no Redis to wait on (memory, custom store)', () => {
    const d = { durability: { replicas: 1 } };
    expect(validationOption(() => new TaskQueue(d))).toBe('durability');
    expect(validationOption(() => new DistributedSessionManager(d))).toBe('durability');
    expect(
      validationOption(
        () => new DistributedSessionManager({ ...d, store: new MemorySessionStore() }),
      ),
    ).toBe('durability');
    expect(validationOption(() => new CostOptimizer(d))).toBe('durability');
    // Invalid values are caught at construction too.
    expect(validationOption(() => new TaskQueue({ durability: { replicas: -1 } }))).toBe(
      'durability.replicas',
    );
  });
});

describe('with a real replica', () => {
  let primary: ServerHandle;
  let replica: ServerHandle;
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    primary = await startRedisServer();
    replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const c = new Redis(primary.url);
    const end = Date.now() + 20_000;
    while (!/state=online/.test(await c.info('replication')) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
    }
    c.disconnect();
  }, 30_000);
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await replica?.stop();
    await primary?.stop();
  });

  it('acknowledges task submits, session appends and spend once the replica has them', async () => {
    const durability = { replicas: 1, timeout: 5 };
    const q = new TaskQueue({ redis: primary.url, name: 'dq', durability });
    const m = new DistributedSessionManager({ redis: primary.url, prefix: 'ds:', durability });
    const o = new CostOptimizer({ redis: primary.url, name: 'dc', durability });
    closers.push(
      () => q.close(),
      () => m.close(),
      () => o.close(),
    );
    const id = await q.submitTask({ a: 1 });
    await m.appendMessage('s', { role: 'user', content: 'x' });
    await o.recordSpend(2);
    // What was acknowledged is on the replica.
    const r = new Redis(replica.url);
    closers.push(async () => r.disconnect());
    expect(await r.exists('ds:s')).toBe(1);
    expect((await r.keys('*dq*')).length).toBeGreaterThan(0);
    expect(await q.getTask(id)).toMatchObject({ status: 'queued' });
  });

  it('asks for more replicas than exist: DurabilityError with the counts; the write is applied', async () => {
    const q = new TaskQueue({
      redis: primary.url,
      name: 'dq2',
      durability: { replicas: 2, timeout: 0.1 },
    });
    closers.push(() => q.close());
    const err = await q.submitTask({ a: 1 }, { taskId: 'x1' }).catch((e) => e);
    expect(err).toBeInstanceOf(DurabilityError);
    expect(err).toMatchObject({ code: 'AZS_DURABILITY', acknowledged: 1, required: 2 });
    expect(err.message).toMatch(/may or may not survive a failover/);
    expect(await q.getTask('x1')).toMatchObject({ status: 'queued' });
  });

  it('aof: true uses WAITAOF where the server has it, else WAIT (Redis 7.0 here)', async () => {
    const c = new Redis(primary.url);
    closers.push(async () => c.disconnect());
    const policy = resolveDurability({ replicas: 1, aof: true, timeout: 5 }) as DurabilityPolicy;
    expect(await durableWrite(policy, c, 'k', 'test', (w) => w.set('k', 'v'))).toBe('OK');
  });

  it('a reconnect between the write and WAIT is never reported as confirmed', async () => {
    const c = new Redis(primary.url);
    closers.push(async () => c.disconnect());
    await c.ping();
    const policy = resolveDurability({ replicas: 1, timeout: 5 }) as DurabilityPolicy;
    const err = await durableWrite(policy, c, 'k2', 'test', async (w) => {
      const r = await w.set('k2', 'v');
      // The socket that took the write goes away; ioredis makes a new one.
      (w as Redis).disconnect(true);
      await new Promise<void>((resolve) => w.once('ready', () => resolve()));
      return r;
    }).catch((e) => e);
    expect(isDurabilityError(err)).toBe(true);
    expect(err.message).toMatch(/connection changed/);
    expect(err.acknowledged).toBe(0);
  });
});

describe('servers without replicas', () => {
  const s = servers();
  const closers: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  });
  it.each([
    ['standalone', () => s.redisUrl],
    ['cluster', () => ({ nodes: s.clusterNodes })],
  ] as const)(
    '%s: every durable write fails with acknowledged 0 and is applied',
    async (_, redis) => {
      const durability = { replicas: 1, timeout: 0.1 };
      const name = uniquePrefix('dnr').slice(4, -1);
      const q = new TaskQueue({ redis: redis(), name, durability });
      const m = new DistributedSessionManager({ redis: redis(), prefix: `${name}:`, durability });
      const o = new CostOptimizer({ redis: redis(), name, durability });
      closers.push(
        () => q.close(),
        () => m.close(),
        () => o.close(),
      );
      for (const write of [
        () => q.submitTask({ a: 1 }, { taskId: 't' }),
        () => m.appendMessage('s', { role: 'user', content: 'x' }),
        () => o.recordSpend(1),
      ]) {
        const err = await write().catch((e) => e);
        expect(err).toMatchObject({ code: 'AZS_DURABILITY', acknowledged: 0, required: 1 });
      }
      expect(await q.getTask('t')).not.toBeNull();
      expect((await m.getSession('s')).messages).toHaveLength(1);
      expect(await o.currentSpend()).toBe(1);
    },
  );
});
