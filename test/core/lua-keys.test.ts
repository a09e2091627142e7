/**
 * The Lua rule (issue 13): every key a script reads or writes is declared in KEYS, so scripts
 * run on Redis Cluster, Valkey and stores that enforce declared keys. With
 * `LuaScript.checkDeclaredKeys` on, every script runs behind a prelude that wraps `redis.call`
 * and `redis.pcall` and fails on a key that is not in KEYS; this file drives every module's
 * scripts through it on standalone Redis and records each script that ran and each violation.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { RedisConnection } from '../../src/core/connection.js';
import { isBackendError } from '../../src/core/errors.js';
import { LuaScript, UNDECLARED_KEY_CODE } from '../../src/core/lua-script.js';
import { CircuitBreaker, ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager, RedisSessionStore } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { LUA as WORKER_LUA } from '../../src/worker/lua/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

// Which module file a script comes from, and the name of the constant that holds it, found by
// looking its source up in the module files (no module has to export its scripts for this).
const FILES = [
  'src/session/redis-store.ts',
  'src/session/scripts.ts',
  'src/resilience/redis-common.ts',
  'src/resilience/redis-breaker-store.ts',
  'src/resilience/redis-semaphore-store.ts',
  'src/resilience/redis-rate-store.ts',
  'src/scaling/redis-store.ts',
  'src/cache/redis-store.ts',
];
const texts = FILES.map((f) => [f, readFileSync(f, 'utf8')] as const);
// The worker's scripts are shared functions (prelude, events, complete-fn) followed by one
// file of lua/ (its body): a script is named after the file it ends with.
const WORKER_BODIES = Object.entries(WORKER_LUA).filter(
  ([name]) => !['prelude', 'events', 'complete-fn'].includes(name),
);
function label(source: string): string {
  for (const [name, body] of WORKER_BODIES) {
    if (source.endsWith(body)) return `worker/lua/${name}.lua`;
  }
  // Shared fragments are constants defined before the scripts that interpolate them, so the
  // script's own body is its line (one that occurs once in the file) found furthest down.
  let best: { file: string; at: number; text: string; hits: number } | undefined;
  const lines = source
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 16);
  for (const [file, text] of texts) {
    let hits = 0;
    let at = -1;
    for (const line of lines) {
      const i = text.indexOf(line);
      if (i < 0) continue;
      hits++;
      if (text.lastIndexOf(line) === i) at = Math.max(at, i);
    }
    // The file holding most of the script's lines is its home.
    if (at >= 0 && (!best || hits > best.hits)) best = { file, at, text, hits };
  }
  if (!best) return `unknown:${source.trim().slice(0, 40)}`;
  const names = [...best.text.slice(0, best.at).matchAll(/const\s+([A-Z_]+)\s*=/g)];
  return `${best.file.replace(/^src\//, '')}:${names.at(-1)?.[1] ?? '?'}`;
}

const OWN_SCRIPTS = new Set(['sneaky', 'pcall', 'honest', 'broken']);
const ran = new Map<string, number>();
const violations = new Map<string, string>();
const original = LuaScript.prototype.run;

beforeAll(() => {
  LuaScript.checkDeclaredKeys = true;
  LuaScript.prototype.run = async function (this: LuaScript, client, keys, args) {
    // Scripts this file makes itself are checked by their own test (modules name theirs too).
    if (OWN_SCRIPTS.has(this.name ?? '')) return original.call(this, client, keys, args);
    const name = label(this.source);
    ran.set(name, (ran.get(name) ?? 0) + 1);
    try {
      return await original.call(this, client, keys, args);
    } catch (e) {
      const code = (e as { context?: { replyCode?: string } }).context?.replyCode;
      if (code !== UNDECLARED_KEY_CODE || !LuaScript.checkDeclaredKeys) throw e;
      violations.set(name, (e as Error).message);
      // Recorded (the last test fails on it); run it unchecked so the module's flow goes on and
      // its later scripts are checked too, giving one complete list per run.
      LuaScript.checkDeclaredKeys = false;
      try {
        return await original.call(this, client, keys, args);
      } finally {
        LuaScript.checkDeclaredKeys = true;
      }
    }
  };
});
afterAll(() => {
  LuaScript.prototype.run = original;
  LuaScript.checkDeclaredKeys = false;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function caught(
  p: Promise<unknown>,
): Promise<{ message: string; context: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as { message: string; context: Record<string, unknown> };
  }
  throw new Error('expected the script to fail');
}

describe('the declared-keys check itself', () => {
  it('fails a script that touches an undeclared key and passes one that declares it', async () => {
    const conn = new RedisConnection(servers().redisUrl);
    try {
      const c = await conn.get();
      const p = uniquePrefix('lk');
      const sneaky = new LuaScript(
        "redis.call('SET', KEYS[1], '1') return redis.call('GET', ARGV[1] .. 'other')",
        'sneaky',
      );
      const e = await caught(sneaky.run(c, [`${p}a`], [p]));
      expect(isBackendError(e)).toBe(true);
      expect(e.context.replyCode).toBe(UNDECLARED_KEY_CODE);
      // pcall too, and multi-key commands (every key counts).
      const viaPcall = new LuaScript("return redis.pcall('DEL', KEYS[1], ARGV[1])", 'pcall');
      expect((await caught(viaPcall.run(c, [`${p}a`], [`${p}b`]))).context.replyCode).toBe(
        UNDECLARED_KEY_CODE,
      );
      const honest = new LuaScript(
        "redis.call('SET', KEYS[1], ARGV[1]) redis.call('TIME') return redis.call('MGET', KEYS[1], KEYS[2])",
        'honest',
      );
      expect(await honest.run(c, [`${p}a`, `${p}b`], ['v'])).toEqual(['v', null]);
      // Off, the same sneaky script runs.
      LuaScript.checkDeclaredKeys = false;
      expect(await sneaky.run(c, [`${p}a`], [p])).toBeNull();
      LuaScript.checkDeclaredKeys = true;
      // The prelude shares the script's first line: the body's own line numbers stay right.
      const broken = new LuaScript('local x = nil\nreturn x.y', 'broken');
      const b = await caught(broken.run(c, [`${p}n`], []));
      expect(String(b.message)).toMatch(/user_script:2:/);
      await c.del(`${p}a`, `${p}b`, `${p}n`);
    } finally {
      LuaScript.checkDeclaredKeys = true;
      await conn.close();
    }
  });
});

describe("every module's scripts declare their keys", () => {
  const redis = () => servers().redisUrl;

  it('session: save (CAS), update, append', async () => {
    const sessions = new DistributedSessionManager({ redis: redis(), prefix: uniquePrefix('lks') });
    try {
      const id = sessions.newSessionId();
      await sessions.saveSession(id, { messages: [] }).catch(() => undefined);
      await sessions.updateSession(id, (s) => ({ ...s, n: 1 })).catch(() => undefined);
      await sessions.appendMessage(id, { role: 'user', content: 'hi' }).catch(() => undefined);
      await sessions
        .appendMessages(id, [{ role: 'assistant', content: 'hello' }])
        .catch(() => undefined);
      await sessions.getSession(id).catch(() => undefined);
    } finally {
      await sessions.close();
    }
    // The server-side append (the APPEND script) runs with appendMode 'server'.
    const store = new RedisSessionStore(redis(), { appendMode: 'server' });
    const onServer = new DistributedSessionManager({ store, prefix: uniquePrefix('lks') });
    try {
      const id = onServer.newSessionId();
      await onServer.appendMessage(id, { role: 'user', content: 'hi' }).catch(() => undefined);
      await onServer.appendMessage(id, { role: 'user', content: 'again' }).catch(() => undefined);
    } finally {
      await onServer.close();
      await store.close();
    }
  });

  it('cache: getOrSet with the lock', async () => {
    const cache = new DistributedCache({ redis: redis(), prefix: uniquePrefix('lkc'), lock: true });
    try {
      await cache.getOrSet('k', async () => 'v', { ttl: 5 }).catch(() => undefined);
      await cache.get('k').catch(() => undefined);
    } finally {
      await cache.close();
    }
  });

  it('worker: submit, claim, heartbeat, progress, complete, fail, dead-letter, redrive, cancel, stats, release', async () => {
    const queue = new TaskQueue({ name: uniquePrefix('lkw').slice(0, -1), redis: redis() });
    let failing = true;
    const worker = new BackgroundWorker<{ fail?: boolean; slow?: boolean }, string>({
      queue,
      visibilityTimeout: 2,
      attempts: 1,
      handler: async (
        data: { fail?: boolean; slow?: boolean },
        ctx: { progress(n: number): Promise<void> },
      ) => {
        await ctx.progress(50).catch(() => undefined);
        if (data.slow) await sleep(2500);
        if (data.fail && failing) throw new Error('boom');
        return 'ok';
      },
    });
    worker.on('error', () => {});
    try {
      await worker.start().catch(() => undefined);
      const ok = await queue.submitTask({}).catch(() => undefined);
      const bad = await queue.submitTask({ fail: true }).catch(() => undefined);
      await queue.submitTask({ slow: true }).catch(() => undefined);
      if (ok) await queue.waitForResult(ok, { timeout: 5 }).catch(() => undefined);
      if (bad) await queue.waitForResult(bad, { timeout: 5 }).catch(() => undefined);
      failing = false;
      await queue.redrive().catch(() => undefined);
      const later = await queue.submitTask({}, { delay: 60 }).catch(() => undefined);
      if (later) await queue.cancelTask(later).catch(() => undefined);
      await queue.stats().catch(() => undefined);
      await sleep(1500);
    } finally {
      await worker.stop({ timeout: 1 }).catch(() => undefined);
      await queue.close();
    }
  });

  it('limiters: ConcurrencyLimiter and RateLimiter (acquire, penalize)', async () => {
    const limiter = new ConcurrencyLimiter({
      concurrency: 2,
      key: uniquePrefix('lkl'),
      redis: redis(),
      leaseTtl: 1,
    });
    const rate = new RateLimiter({
      key: uniquePrefix('lkr'),
      redis: redis(),
      requestsPerMinute: 600,
      tokensPerMinute: 100_000,
      maxWait: 2,
    });
    try {
      await Promise.all(
        Array.from({ length: 4 }, () => limiter.run(() => sleep(1200)).catch(() => undefined)),
      );
      await rate.acquire({ tokens: 10 }).catch(() => undefined);
      await rate.tryAcquire().catch(() => undefined);
      await rate.penalize(1).catch(() => undefined);
      await rate.acquire().catch(() => undefined);
    } finally {
      await limiter.close();
      await rate.close();
    }
  });

  it('shared circuit: failures open it, the trial closes it, reset', async () => {
    const breaker = new CircuitBreaker({
      name: uniquePrefix('lkb'),
      redis: redis(),
      failureThreshold: 2,
      recoveryTimeout: 0.5,
      syncInterval: 0.1,
    });
    try {
      for (let i = 0; i < 3; i++) {
        await breaker
          .execute(async () => {
            throw new Error('down');
          })
          .catch(() => undefined);
      }
      await sleep(700);
      await breaker.execute(async () => 1).catch(() => undefined);
      await sleep(300);
      await (breaker as unknown as { reset?: () => Promise<void> })
        .reset?.()
        ?.catch?.(() => undefined);
    } finally {
      await breaker.close();
    }
  });

  it('spend store: recordSpend and LLM usage', async () => {
    const costs = new CostOptimizer({
      redis: redis(),
      prefix: uniquePrefix('lkx'),
      hourlyBudget: 100,
    });
    try {
      await costs.recordSpend(1.5, { category: 'llm' }).catch(() => undefined);
      await costs.currentSpend().catch(() => undefined);
      await costs.spendByCategory().catch(() => undefined);
    } finally {
      await costs.close();
    }
  });

  it('no script touched an undeclared key', () => {
    console.log(`scripts run: ${JSON.stringify(Object.fromEntries(ran))}`);
    console.log(`violations: ${JSON.stringify(Object.fromEntries(violations), null, 1)}`);
    // The scripts each module is known to run went through the check.
    for (const s of [
      // The session's scripts live in scripts.ts (sources in CAS_SOURCE / APPEND_SOURCE).
      'session/scripts.ts:CAS_SOURCE',
      'session/scripts.ts:APPEND_SOURCE',
      'worker/lua/submit.lua',
      'worker/lua/claim.lua',
      'worker/lua/complete.lua',
      'worker/lua/progress.lua',
      'worker/lua/cancel.lua',
      'worker/lua/redrive.lua',
      'worker/lua/stats.lua',
      'worker/lua/release.lua',
      'resilience/redis-semaphore-store.ts:SEM_ACQUIRE',
      'resilience/redis-semaphore-store.ts:SEM_RELEASE',
      'resilience/redis-rate-store.ts:RATE_TAKE',
      'resilience/redis-rate-store.ts:RATE_PAUSE',
      'resilience/redis-breaker-store.ts:BREAKER_OPEN',
      'resilience/redis-breaker-store.ts:BREAKER_TRIAL',
      'resilience/redis-breaker-store.ts:BREAKER_SETTLE',
      'scaling/redis-store.ts:ADD_SCRIPT',
    ]) {
      expect(ran.has(s), s).toBe(true);
    }
    expect(Object.fromEntries(violations)).toEqual({});
  });
});
