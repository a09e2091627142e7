/**
 * Issue 13, defect 13: every key a worker script reads or writes is declared in KEYS. Each script
 * runs behind a prelude that shadows `redis.call`/`redis.pcall` and raises on any key argument
 * not in KEYS; a workflow that reaches every script (and every branch that touches a task) must
 * run clean on standalone Redis and on Cluster.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LuaScript } from '../../src/core/lua-script.js';
import { BackgroundWorker, type RedisQueueBackend, TaskQueue } from '../../src/worker/index.js';
import * as L from '../../src/worker/redis-scripts.js';
import { ADMIN_SCRIPTS } from '../../src/worker/redis-admin.js';
import { servers } from '../harness/env.js';

/** Key positions (1-based in the command's arguments after its name) of the commands used. */
const CHECK_PRELUDE = `
local __declared = {}
for _, k in ipairs(KEYS) do __declared[k] = true end
local function __keys(cmd, a)
  local c = string.upper(cmd)
  if c == 'XREADGROUP' or c == 'XREAD' then
    for i = 1, #a do
      if string.upper(tostring(a[i])) == 'STREAMS' then
        local n = (#a - i) / 2
        local out = {}
        for j = 1, n do out[j] = a[i + j] end
        return out
      end
    end
    return {}
  end
  if c == 'XGROUP' or c == 'XINFO' then return { a[2] } end
  return { a[1] }
end
local function __check(cmd, ...)
  for _, k in ipairs(__keys(cmd, { ... })) do
    if not __declared[k] then error('undeclared key ' .. tostring(k) .. ' in ' .. cmd) end
  end
end
local __real = redis
local redis = setmetatable({
  call = function(cmd, ...) __check(cmd, ...) return __real.call(cmd, ...) end,
  pcall = function(cmd, ...) __check(cmd, ...) return __real.pcall(cmd, ...) end,
}, { __index = __real })
`;

const used = new Set<string>();
const original = LuaScript.prototype.run;

beforeAll(() => {
  vi.spyOn(LuaScript.prototype, 'run').mockImplementation(async function (
    this: LuaScript,
    client,
    keys,
    args,
  ) {
    used.add(this.sha);
    const checked = new LuaScript(CHECK_PRELUDE + this.source);
    return original.call(checked, client, keys, args);
  });
});
afterAll(() => {
  vi.restoreAllMocks();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error('condition not met in time');
}

describe.each(['redis', 'cluster'] as const)('worker scripts declare their keys (%s)', (kind) => {
  it('a workflow through every script raises no undeclared-key error', async () => {
    const s = servers();
    const q = new TaskQueue({
      name: `wk-${randomBytes(5).toString('hex')}`,
      redis: kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes },
      maxQueued: 1000,
      resultTtl: 1,
      // Reaches the claim script's rate-limit branch (issue 17).
      rateLimit: { max: 1000, per: 1 },
    });
    const errors: Error[] = [];
    const w = new BackgroundWorker<{ kind: string }, string>({
      queue: q,
      visibilityTimeout: 0.3,
      attempts: 2,
      backoff: { delay: 0.05, jitter: false },
      handler: async (d, ctx) => {
        await ctx.progress(50);
        if (d.kind === 'fail') throw new Error('no');
        if (d.kind === 'slow') await sleep(800);
        return d.kind;
      },
    });
    w.on('error', (e) => errors.push(e));
    try {
      const ok = await q.submitTask({ kind: 'ok' });
      const prio = await q.submitTask({ kind: 'prio' }, { priority: 3 });
      const late = await q.submitTask({ kind: 'late' }, { delay: 0.1 });
      const bad = await q.submitTask({ kind: 'fail' });
      const gone = await q.submitTask({ kind: 'x' }, { delay: 60 });
      await q.submitTask({ kind: 'ok' }, { taskId: ok });
      expect(await q.cancelTask(gone)).toBe(true);
      await w.start();
      for (const id of [ok, prio, late]) await q.waitForResult(id, { timeout: 20 });
      await until(async () => (await q.getTask(bad))?.status === 'failed');
      expect((await q.deadLetters()).map((t) => t.id)).toContain(bad);
      expect(await q.redrive([bad])).toBe(1);
      await until(async () => (await q.getTask(bad))?.status === 'failed');
      expect(await q.redrive()).toBe(1);
      const slow = await q.submitTask({ kind: 'slow' });
      await until(async () => (await q.getTask(slow))?.status === 'processing');
      await q.stats();
      await w.stop({ timeout: 0 });
      // Finished tasks expire (resultTtl 1 s) and are pruned by the next calls.
      await sleep(1200);
      await q.submitTask({ kind: 'ok' });
      expect(await q.getTask(ok)).toBeNull();
      expect(errors.filter((e) => /undeclared/.test(e.message))).toEqual([]);
      expect(errors).toEqual([]);
      const backend = q.backend as RedisQueueBackend;
      expect(backend.queueKeys.every((k) => k.includes(`{${q.name}}`))).toBe(true);
      // Scripts the workflow reaches only by timing (a heartbeat, a result written on its own)
      // are called directly with a harmless reference.
      const ref = { id: 'none', lane: 0, entryId: '0-1', attempt: 1 };
      await backend.heartbeat('nobody', [ref], Date.now());
      await backend.complete([{ ...ref, result: '1' }], Date.now());
      await backend.progress(ref, 1, Date.now());
      await backend.release('nobody', [], Date.now());
      // Issue 17's admin scripts: pause flag, listing every status, cleaning, obliterate.
      await q.pause();
      expect(await q.isPaused()).toBe(true);
      await q.resume();
      for (const status of [
        'queued',
        'delayed',
        'processing',
        'completed',
        'failed',
        'cancelled',
      ] as const) {
        await q.listTasks({ status });
      }
      for (const status of ['completed', 'failed', 'cancelled'] as const) await q.clean({ status });
      await q.obliterate({ force: true });
    } finally {
      await w.stop({ timeout: 0 });
      await q.close();
    }
    // Every worker script ran under the check.
    const all: [string, string][] = (Object.entries(L) as [string, unknown][]).filter(
      (e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'PRELUDE',
    );
    for (const [name, script] of Object.entries(ADMIN_SCRIPTS)) all.push([name, script.source]);
    expect(all.length).toBe(17);
    for (const [name, source] of all) {
      expect({ name, ran: used.has(new LuaScript(source as string).sha) }).toEqual({
        name,
        ran: true,
      });
    }
  }, 60_000);
});
