/**
 * The Lua rule of issue 13 for resilience and scaling: every key a script reads or writes is
 * declared in KEYS (Cluster, Valkey and key-checking proxies depend on it). Each script runs
 * here behind a prelude that wraps `redis.call` and fails on any key argument not in KEYS, on
 * standalone Redis and on Cluster, through every operation of every store.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LuaScript } from '../../src/core/lua-script.js';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

// Commands whose first argument is their only key; DEL and EXISTS take keys only; TIME none.
const PRELUDE = `
local __r = redis
local __declared = {}
for _, k in ipairs(KEYS) do __declared[k] = true end
local function __check(cmd, ...)
  local c = string.upper(cmd)
  if c == 'TIME' then return end
  local args = {...}
  local n = 1
  if c == 'DEL' or c == 'EXISTS' then n = #args end
  for i = 1, n do
    if not __declared[args[i]] then
      error('undeclared key ' .. tostring(args[i]) .. ' in ' .. c)
    end
  end
end
local redis = setmetatable({
  call = function(cmd, ...) __check(cmd, ...) return __r.call(cmd, ...) end,
  pcall = function(cmd, ...) __check(cmd, ...) return __r.pcall(cmd, ...) end,
}, { __index = __r })
`;

const seen = new Set<string>();

beforeAll(() => {
  vi.spyOn(LuaScript.prototype, 'run').mockImplementation(async function (
    this: LuaScript,
    client,
    keys,
    args,
  ) {
    seen.add(this.sha);
    return client.eval(`${PRELUDE}${this.source}`, keys.length, ...keys, ...args);
  });
});
afterAll(() => {
  vi.restoreAllMocks();
});

describe.each([
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
])('every resilience and scaling script declares its keys: $name', ({ redis }) => {
  it('the prelude catches an undeclared key (the check itself works)', async () => {
    const bad = new LuaScript(`return redis.call('GET', KEYS[1] .. 'x')`);
    const o = new CostOptimizer({ redis: redis() });
    const conn = (
      o as unknown as {
        store: { conn: { run: (op: string, f: (c: never) => unknown) => Promise<unknown> } };
      }
    ).store.conn;
    const e = await conn
      .run('test', (c) => bad.run(c, [`${uniquePrefix('lk')}{a}`], []))
      .catch((x: unknown) => x);
    const err = e as Error & { cause?: Error };
    // The script failed: core may sanitise the message, so the cause is checked too.
    expect(err).toBeInstanceOf(Error);
    expect(`${err.message} ${err.cause?.message ?? ''}`).toMatch(/undeclared key|script|ERR/i);
    await o.close();
  });

  it('breaker, semaphore, rate and spend scripts run clean', async () => {
    const name = uniquePrefix('lk');
    const b = new CircuitBreaker({
      name,
      redis: redis(),
      failureThreshold: 1,
      recoveryTimeout: 0.05,
      syncInterval: 0.02,
    });
    const errors: unknown[] = [];
    b.onError((e) => errors.push(e));
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await new Promise((r) => setTimeout(r, 150));
    await b.sync();
    await b.execute(async () => 'trial').catch(() => {});
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await b.reset();
    await b.sync();
    await b.close();

    const l = new ConcurrencyLimiter({
      concurrency: 1,
      redis: redis(),
      key: name,
      leaseTtl: 0.3,
      pollInterval: 0.01,
    });
    l.on('error', (e) => errors.push(e));
    let release = () => {};
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    const first = l.run(
      () =>
        new Promise<void>((r) => {
          release = r;
          started();
        }),
    );
    // Only once `first` holds the slot: its acquire can take longer than the wait below on a
    // loaded Cluster, and releasing before it ran left it (and the test) waiting forever.
    await running;
    const second = l.run(async () => 'second');
    await new Promise((r) => setTimeout(r, 250)); // a renewal and a refused, waiting acquire
    release();
    await first;
    expect(await second).toBe('second');
    expect(await l.inFlight()).toBe(0);
    await l.close();

    const rate = new RateLimiter({ redis: redis(), key: name, requestsPerMinute: 2, maxWait: 0 });
    rate.on('error', (e) => errors.push(e));
    await rate.acquire();
    await rate.tryAcquire({});
    await rate.tryAcquire({});
    await rate.penalize(1);
    expect((await rate.tryAcquire()).allowed).toBe(false);
    await rate.close();

    for (const mode of ['gcra', 'sliding-window'] as const) {
      const r = new RateLimiter({
        redis: redis(),
        key: `${name}${mode}`,
        mode,
        tokensPerMinute: 100,
      });
      const { grant } = await r.acquire({ tokens: 60 });
      await r.settle(grant, 20);
      await r.adjust(30);
      expect((await r.tryAcquire({ tokens: 60 })).allowed).toBe(false);
      await r.penalize(1);
      expect((await r.tryAcquire({ tokens: 1 })).allowed).toBe(false);
      await r.close();
    }

    const cost = new CostOptimizer({ redis: redis(), prefix: name });
    await cost.recordSpend(1);
    await cost.recordSpend(1, { category: 'c' });
    await cost.close();

    expect(errors).toEqual([]);
    expect(seen.size).toBeGreaterThanOrEqual(14);
  });
});
