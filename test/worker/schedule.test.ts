/**
 * Schedules on memory, Redis standalone and Redis Cluster: ticks become tasks with ids
 * `schedule:<id>:<tick ms>`, one per tick however many workers (and queue objects) take part;
 * upsert, listing, unschedule, missed ticks and catch-up; validation at the edge.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  isLimitExceededError,
  isSerializationError,
  isValidationError,
} from '../../src/core/errors.js';
import { LuaScript } from '../../src/core/lua-script.js';
import { BackgroundWorker, TaskQueue, type TaskQueueOptions } from '../../src/worker/index.js';
import { planTicks } from '../../src/worker/schedule.js';
import { servers } from '../harness/env.js';

type Kind = 'memory' | 'redis' | 'cluster';

function redisFor(kind: Kind): TaskQueueOptions['redis'] {
  if (kind === 'memory') return undefined;
  const s = servers();
  return kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** The tick time a schedule's task id carries. */
function tickOf(taskId: string): number {
  return Number(taskId.slice(taskId.lastIndexOf(':') + 1));
}

describe.each<Kind>(['memory', 'redis', 'cluster'])('schedules: %s', (kind) => {
  const opened: { close(): Promise<void> }[] = [];
  const workers: BackgroundWorker[] = [];

  function queue(name = `sq-${randomBytes(5).toString('hex')}`): TaskQueue {
    const q = new TaskQueue({ name, redis: redisFor(kind), prefix: 'azs-test-sched:' });
    opened.push(q);
    return q;
  }

  /** A worker recording every task it runs as `taskId` (data under `seen`). */
  function recorder(q: TaskQueue, seen: Map<string, unknown>[], extra = {}): BackgroundWorker {
    const w = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 5,
      handler: async (data, ctx) => {
        const m = new Map([[ctx.taskId, data]]);
        seen.push(m);
        return null;
      },
      ...extra,
    });
    workers.push(w);
    return w;
  }

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
    for (const q of opened.splice(0)) await q.close();
  });

  it('fires one task per tick with three workers on two queue objects', async () => {
    const q1 = queue();
    const q2 = queue(q1.name);
    const runs: Map<string, unknown>[] = [];
    // A generous grace: this test is about one task per tick, not about lateness on a loaded host.
    const info = await q1.schedule('tick', { every: 0.2, misfireGrace: 10, data: { n: 1 } });
    expect(info).toMatchObject({ id: 'tick', every: 0.2, misfireGrace: 10, data: { n: 1 } });
    expect(info.next).toBeInstanceOf(Date);
    expect((info.next as Date).getTime() % 200).toBe(0);
    await Promise.all([
      recorder(q1, runs).start(),
      recorder(q1, runs).start(),
      recorder(q2, runs).start(),
    ]);
    await until(() => runs.length >= 8);
    await q1.unschedule('tick');
    const ids = runs.map((m) => [...m.keys()][0] as string);
    expect(new Set(ids).size).toBe(ids.length); // no tick twice
    const ticks = ids.map(tickOf).sort((a, b) => a - b);
    for (const t of ticks) expect(t % 200).toBe(0);
    // No gap: consecutive ticks from the first to the last.
    for (let i = 1; i < ticks.length; i++)
      expect((ticks[i] as number) - (ticks[i - 1] as number)).toBe(200);
    for (const m of runs) expect([...m.values()][0]).toEqual({ n: 1 });
    expect(ids[0]).toMatch(/^schedule:tick:\d+$/);
  });

  it('lists schedules with their next run; an upsert with the same timing keeps it', async () => {
    const q = queue();
    const a = await q.schedule('b-every', { every: 3600, data: 1, priority: 5, attempts: 2 });
    const c = await q.schedule('a-cron', { cron: '0 3 * * *', tz: 'Europe/Berlin', timeout: 9 });
    expect(c.next?.toISOString()).toMatch(/T0[12]:00:00\.000Z$/); // 03:00 Berlin = 01:00/02:00 UTC
    const list = await q.schedules();
    expect(list.map((s) => s.id).sort()).toEqual(['a-cron', 'b-every']);
    const byId = Object.fromEntries(list.map((s) => [s.id, s]));
    expect(byId['b-every']).toMatchObject({ every: 3600, data: 1, priority: 5, attempts: 2 });
    expect(byId['a-cron']).toMatchObject({
      cron: '0 3 * * *',
      tz: 'Europe/Berlin',
      timeout: 9,
      data: null,
    });
    expect(byId['b-every']?.next?.getTime()).toBe(a.next?.getTime());
    // Same timing, new data: next run kept, data replaced.
    const a2 = await q.schedule('b-every', { every: 3600, data: 2 });
    expect(a2.next?.getTime()).toBe(a.next?.getTime());
    expect((await q.schedules()).find((s) => s.id === 'b-every')?.data).toBe(2);
    // New timing: next run recomputed.
    const a3 = await q.schedule('b-every', { every: 7 });
    expect(a3.next?.getTime()).toBeLessThanOrEqual(Date.now() + 7000);
    expect(await q.unschedule('b-every')).toBe(true);
    expect(await q.unschedule('b-every')).toBe(false);
    expect((await q.schedules()).map((s) => s.id)).toEqual(['a-cron']);
  });

  it('runs a 6-field cron in a time zone; unschedule stops it', async () => {
    const q = queue();
    const runs: Map<string, unknown>[] = [];
    await q.schedule('sec', { cron: '* * * * * *', tz: 'Asia/Kolkata', data: 'x' });
    await recorder(q, runs).start();
    await until(() => runs.length >= 2);
    await q.unschedule('sec');
    const ticks = runs.map((m) => tickOf([...m.keys()][0] as string));
    for (const t of ticks) expect(t % 1000).toBe(0);
    const count = runs.length;
    await sleep(1500);
    expect(runs.length).toBeLessThanOrEqual(count + 1); // at most one that was already pending
  });

  it('skips ticks missed while no worker ran; catchUp runs one', async () => {
    const q = queue();
    const runs: Map<string, unknown>[] = [];
    const grace = 0.3;
    await q.schedule('skip', { every: 0.5, misfireGrace: grace, data: 's' });
    await q.schedule('catch', { every: 0.5, misfireGrace: grace, catchUp: true, data: 'c' });
    await sleep(2300);
    const startedAt = Date.now();
    await recorder(q, runs).start();
    await until(() => runs.filter((m) => [...m.values()][0] === 's').length >= 2);
    await until(() => runs.filter((m) => [...m.values()][0] === 'c').length >= 3);
    const late = (tag: string) =>
      runs.filter(
        (m) =>
          [...m.values()][0] === tag &&
          tickOf([...m.keys()][0] as string) < startedAt - grace * 1000,
      );
    expect(late('s')).toHaveLength(0);
    expect(late('c')).toHaveLength(1);
  });

  it('runs a named schedule with handlers[name]; obliterate removes schedules', async () => {
    const q = queue();
    const got: unknown[] = [];
    const w = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 5,
      handlers: {
        refresh: async (data, ctx) => {
          got.push([ctx.taskId, data]);
          return 'ok';
        },
      },
    });
    workers.push(w);
    const info = await q.schedule('named', {
      every: 0.2,
      name: 'refresh',
      data: 'd',
      misfireGrace: 10,
    });
    expect(info.name).toBe('refresh');
    await w.start();
    await until(() => got.length >= 1);
    const [taskId, data] = got[0] as [string, unknown];
    expect(taskId).toMatch(/^schedule:named:\d+$/);
    expect(data).toBe('d');
    expect((await q.getTask(taskId))?.name).toBe('refresh');
    await w.stop({ timeout: 5 });
    await q.obliterate({ force: true });
    expect(await q.schedules()).toEqual([]);
  });

  it('a tick refused by a full queue stays pending, holds its schedule, and runs once there is room', async () => {
    const q = new TaskQueue({
      name: `sq-${randomBytes(5).toString('hex')}`,
      redis: redisFor(kind),
      prefix: 'azs-test-sched:',
      maxQueued: 2,
    });
    opened.push(q);
    const runs: Map<string, unknown>[] = [];
    const w = recorder(q, runs);
    const errors: Error[] = [];
    w.on('error', (e) => errors.push(e));
    await q.pause();
    await q.schedule('full', { every: 0.1, misfireGrace: 0.3 });
    await w.start();
    await until(() => errors.some((e) => isLimitExceededError(e)));
    await sleep(1000); // refused retries; later ticks are held, then missed
    const resumedAt = Date.now();
    await q.resume();
    await until(() => runs.length >= 5);
    const ticks = runs.map((m) => tickOf([...m.keys()][0] as string)).sort((a, b) => a - b);
    // The two that fit, the refused third right after them, then only ticks near the resume.
    expect(ticks[1]).toBe((ticks[0] as number) + 100);
    expect(ticks[2]).toBe((ticks[1] as number) + 100);
    expect(ticks[3]).toBeGreaterThanOrEqual(resumedAt - 500); // misfireGrace 0.3 s + margin
    expect(new Set(ticks).size).toBe(ticks.length);
  });

  it('accepts prototype names as ids and keeps them apart', async () => {
    const q = queue();
    await q.schedule('__proto__', { every: 100, data: 'p' });
    await q.schedule('constructor', { every: 200, data: 'c' });
    const list = await q.schedules();
    expect(list.map((s) => [s.id, s.data])).toEqual([
      ['__proto__', 'p'],
      ['constructor', 'c'],
    ]);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('rejects bad input with ValidationError naming the option', async () => {
    const q = queue();
    const bad: [unknown, unknown, string][] = [
      ['x', { every: 0 }, 'every'],
      ['x', { every: -1 }, 'every'],
      ['x', { every: Number.NaN }, 'every'],
      ['x', { every: Number.POSITIVE_INFINITY }, 'every'],
      ['x', { every: 1e12 }, 'every'],
      ['x', { every: 0.001 }, 'every'],
      ['x', { every: '5' }, 'every'],
      ['x', {}, 'every'],
      ['x', { every: 1, cron: '* * * * *' }, 'cron'],
      ['x', { cron: '61 * * * *' }, 'cron'],
      ['x', { cron: '* * * *' }, 'cron'],
      ['x', { cron: '* * * * * * *' }, 'cron'],
      ['x', { cron: '0 0 30 2 *' }, 'cron'],
      ['x', { cron: '' }, 'cron'],
      ['x', { cron: 5 }, 'cron'],
      ['x', { cron: '* * * * *', tz: 'Mars/Olympus' }, 'tz'],
      ['x', { every: 5, tz: 'UTC' }, 'tz'],
      ['x', { every: 5, catchUp: 'yes' }, 'catchUp'],
      ['x', { every: 5, misfireGrace: -1 }, 'misfireGrace'],
      ['x', { every: 5, priority: 1.5 }, 'priority'],
      ['x', { every: 5, attempts: 0 }, 'attempts'],
      ['x', { every: 5, name: 'a\nb' }, 'name'],
      ['a\u0000b', { every: 5 }, 'id'],
      ['', { every: 5 }, 'id'],
      ['x'.repeat(300), { every: 5 }, 'id'],
      [42, { every: 5 }, 'id'],
      ['x', null, 'options'],
    ];
    for (const [id, opts, option] of bad) {
      const err = await q.schedule(id as string, opts as never).catch((e: unknown) => e);
      expect(isValidationError(err), `${String(id)} ${JSON.stringify(opts)}`).toBe(true);
      expect((err as { option?: string }).option, JSON.stringify(opts)).toBe(option);
    }
    const ser = await q.schedule('x', { every: 5, data: 10n }).catch((e: unknown) => e);
    expect(isSerializationError(ser)).toBe(true);
    await expect(q.unschedule('a\u0001')).rejects.toMatchObject({ code: 'AZS_VALIDATION' });
    expect(await q.schedules()).toEqual([]);
  });
});

describe('planTicks', () => {
  const def = { id: 'p', data: 'null', catchUp: false, everyMs: 1000 };

  it('fires an on-time tick and moves to the following one', () => {
    expect(planTicks(def, 10_000, 10_050)).toEqual({ fire: [10_000], next: 11_000 });
  });

  it('fires ticks within their grace in order, skips older ones', () => {
    // Default grace for every 1 s: 1 s. Ticks 10..14 s due at 14.5 s: 14 s is 0.5 s late.
    expect(planTicks(def, 10_000, 14_500)).toEqual({ fire: [14_000], next: 15_000 });
    expect(planTicks({ ...def, graceMs: 2500 }, 10_000, 14_500)).toEqual({
      fire: [12_000, 13_000, 14_000],
      next: 15_000,
    });
  });

  it('catchUp fires the latest missed tick once', () => {
    expect(planTicks({ ...def, catchUp: true }, 10_000, 14_500)).toEqual({
      fire: [13_000, 14_000],
      next: 15_000,
    });
    // Everything missed (grace short): one catch-up task, then the next future tick.
    expect(planTicks({ ...def, catchUp: true, graceMs: 100 }, 10_000, 14_500)).toEqual({
      fire: [14_000],
      next: 15_000,
    });
  });

  it('jumps over a long outage without walking every tick', () => {
    const day = 86_400_000;
    const t0 = performance.now();
    const plan = planTicks({ ...def, everyMs: 10 }, 0, 30 * day);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(plan.fire.length).toBeGreaterThan(0);
    expect(plan.fire[0]).toBeGreaterThanOrEqual(30 * day - 1000);
  });
});

describe('schedule scripts', () => {
  it('touch only the keys they declare (Cluster, key check on)', async () => {
    const before = LuaScript.checkDeclaredKeys;
    LuaScript.checkDeclaredKeys = true;
    const q = new TaskQueue({
      name: `sk-${randomBytes(5).toString('hex')}`,
      redis: { nodes: servers().clusterNodes },
      prefix: 'azs-test-sched:',
    });
    const seen: string[] = [];
    const w = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 5,
      handler: async (_d, ctx) => {
        seen.push(ctx.taskId);
      },
    });
    const errors: Error[] = [];
    w.on('error', (e) => errors.push(e));
    try {
      await q.schedule('k', { every: 0.2, misfireGrace: 10 });
      await w.start();
      await until(() => seen.length >= 2);
      expect((await q.schedules()).map((s) => s.id)).toEqual(['k']);
      expect(await q.unschedule('k')).toBe(true);
      await w.stop({ timeout: 5 });
      await q.obliterate();
      expect(errors).toEqual([]);
    } finally {
      LuaScript.checkDeclaredKeys = before;
      await w.stop({ timeout: 0 });
      await q.close();
    }
  });
});
