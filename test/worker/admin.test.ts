import { describe, expect, it } from 'vitest';
import { isClosedError, isConflictError, isValidationError } from '../../src/core/errors.js';
import { TaskQueue } from '../../src/worker/index.js';
import { KINDS, rejection, sleep, until, workerFixture } from './fixture.js';

describe.each(KINDS)('queue admin: %s', (kind) => {
  const { opened, queue, twin, worker } = workerFixture(kind, {
    namePrefix: 'wa',
    prefix: 'azs-test-worker:',
  });

  it('pause holds new work fleet-wide, lets running tasks finish, and resume releases it', async () => {
    const q = queue();
    const other = twin(q);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const started: string[] = [];
    const w = worker(q, {
      numWorkers: 2,
      handler: async (d: unknown) => {
        started.push(String(d));
        if (d === 'slow') await gate;
        return d;
      },
    });
    await w.start();
    const slow = await q.submitTask('slow');
    await until(() => started.includes('slow'));
    expect(await q.isPaused()).toBe(false);
    await other.pause();
    expect(await q.isPaused()).toBe(true);
    expect(await other.isPaused()).toBe(true);
    // Submitting still works while paused; nothing new starts.
    const held = await q.submitTasks(['a', 'b', 'c']);
    await sleep(300);
    expect(started).toEqual(['slow']);
    // The running task finishes and its result is recorded.
    release();
    expect(await q.waitForResult(slow, { timeout: 10 })).toBe('slow');
    await sleep(200);
    expect(started).toEqual(['slow']);
    for (const id of held) expect((await q.getTask(id))?.status).toBe('queued');
    // Listed behind the consumer group's last delivered entry, newest first.
    expect((await q.listTasks({ status: 'queued' })).map((t) => t.id)).toEqual([...held].reverse());
    await other.resume();
    expect(await q.isPaused()).toBe(false);
    for (const id of held) await q.waitForResult(id, { timeout: 10 });
    expect(started.sort()).toEqual(['a', 'b', 'c', 'slow']);
  });

  it('a worker started while paused claims nothing until resumed; pause is idempotent', async () => {
    const q = queue();
    await q.pause();
    await q.pause();
    const id = await q.submitTask('x');
    let ran = 0;
    const w = worker(q, {
      handler: () => {
        ran++;
        return 1;
      },
    });
    await w.start();
    await sleep(300);
    expect(ran).toBe(0);
    expect((await q.stats()).queued).toBe(1);
    await q.resume();
    await q.resume();
    expect(await q.waitForResult(id, { timeout: 10 })).toBe(1);
  });

  it('listTasks pages each status newest first', async () => {
    const q = queue();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push(await q.submitTask(i, { taskId: `t${i}` }));
    const queued = await q.listTasks({ status: 'queued' });
    expect(queued.map((t) => t.id)).toEqual([...ids].reverse());
    expect(queued[0]).toMatchObject({ id: 't6', status: 'queued', attempts: 0 });
    const p1 = await q.listTasks({ status: 'queued', offset: 0, limit: 3 });
    const p2 = await q.listTasks({ status: 'queued', offset: 3, limit: 3 });
    const p3 = await q.listTasks({ status: 'queued', offset: 6, limit: 3 });
    expect([...p1, ...p2, ...p3].map((t) => t.id)).toEqual([...ids].reverse());
    expect(p3).toHaveLength(1);
    expect(await q.listTasks({ status: 'queued', offset: 7 })).toEqual([]);
    expect(await q.listTasks({ status: 'completed' })).toEqual([]);

    // Delayed: the latest due first.
    await q.submitTask('d1', { taskId: 'd1', delay: 100 });
    await q.submitTask('d2', { taskId: 'd2', delay: 200 });
    expect((await q.listTasks({ status: 'delayed' })).map((t) => t.id)).toEqual(['d2', 'd1']);

    // Run them one at a time, in submit order: completed lists the latest finished first.
    const w = worker(q, { numWorkers: 1, handler: async (d: unknown) => ({ echo: d }) });
    await w.start();
    for (const id of ids) await q.waitForResult(id, { timeout: 10 });
    const done = await q.listTasks({ status: 'completed', limit: 1000 });
    expect(done.map((t) => t.id)).toEqual([...ids].reverse());
    expect(done[0]?.result).toEqual({ echo: 6 });
    const page = await q.listTasks({ status: 'completed', offset: 2, limit: 2 });
    expect(page.map((t) => t.id)).toEqual(['t4', 't3']);
    expect(await q.listTasks({ status: 'queued' })).toEqual([]);
  });

  it('listTasks shows processing, failed and cancelled tasks', async () => {
    const q = queue();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const w = worker(q, {
      numWorkers: 2,
      attempts: 1,
      handler: async (d: unknown) => {
        if (d === 'bad') throw new Error('boom');
        await gate;
        return d;
      },
    });
    await q.pause();
    const c1 = await q.submitTask('c1', { taskId: 'c1' });
    await q.cancelTask(c1);
    await w.start();
    const bad = await q.submitTask('bad', { taskId: 'bad' });
    const run = await q.submitTask('run', { taskId: 'run' });
    await q.resume();
    await until(async () => (await q.listTasks({ status: 'processing' })).length === 1);
    expect((await q.listTasks({ status: 'processing' }))[0]).toMatchObject({
      id: run,
      status: 'processing',
      attempts: 1,
    });
    await until(async () => (await q.getTask(bad))?.status === 'failed');
    const failed = await q.listTasks({ status: 'failed' });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ id: 'bad', status: 'failed', error: 'boom' });
    const cancelled = await q.listTasks({ status: 'cancelled' });
    expect(cancelled.map((t) => t.id)).toEqual(['c1']);
    release();
    await q.waitForResult(run, { timeout: 10 });
    expect(await q.listTasks({ status: 'processing' })).toEqual([]);
  });

  it('clean removes finished tasks older than olderThan, up to limit, and nothing else', async () => {
    const q = queue();
    const ids = await q.submitTasks([1, 2, 3, 4, 5]);
    const waiting = await q.submitTask('waits', { delay: 3600 });
    const w = worker(q, { handler: (d: unknown) => d });
    await w.start();
    for (const id of ids) await q.waitForResult(id, { timeout: 10 });
    await w.stop();
    const cancelled = await q.submitTask('c');
    await q.cancelTask(cancelled);
    // Nothing finished an hour ago.
    expect(await q.clean({ status: 'completed', olderThan: 3600 })).toBe(0);
    await sleep(30);
    expect(await q.clean({ status: 'completed', olderThan: 0, limit: 2 })).toBe(2);
    expect(await q.listTasks({ status: 'completed' })).toHaveLength(3);
    expect(await q.clean({ status: 'completed' })).toBe(3);
    expect(await q.listTasks({ status: 'completed' })).toEqual([]);
    for (const id of ids) expect(await q.getTask(id)).toBeNull();
    expect(await q.clean({ status: 'cancelled' })).toBe(1);
    expect(await q.getTask(cancelled)).toBeNull();
    expect(await q.clean({ status: 'failed' })).toBe(0);
    expect((await q.getTask(waiting))?.status).toBe('delayed');
  });

  it('clean removes dead letters', async () => {
    const q = queue();
    const w = worker(q, {
      attempts: 1,
      handler: () => {
        throw new Error('nope');
      },
    });
    await w.start();
    const ids = await q.submitTasks(['a', 'b', 'c']);
    await until(async () => (await q.stats()).deadLettered === 3);
    expect(await q.clean({ status: 'failed', limit: 1 })).toBe(1);
    expect((await q.stats()).deadLettered).toBe(2);
    expect(await q.clean({ status: 'failed' })).toBe(2);
    expect(await q.deadLetters()).toEqual([]);
    for (const id of ids) expect(await q.getTask(id)).toBeNull();
  });

  it('obliterate refuses while tasks run unless forced, and removes everything', async () => {
    const q = queue();
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const w = worker(q, {
      handler: async () => {
        await gate;
        return 1;
      },
    });
    await w.start();
    const running = await q.submitTask('r');
    await until(async () => (await q.getTask(running))?.status === 'processing');
    const other = await q.submitTask('waits', { delay: 3600 });
    await q.pause();
    const e = await rejection(q.obliterate());
    expect(isConflictError(e)).toBe(true);
    expect((await q.getTask(other))?.status).toBe('delayed');
    await q.obliterate({ force: true });
    expect(await q.getTask(running)).toBeNull();
    expect(await q.getTask(other)).toBeNull();
    expect(await q.isPaused()).toBe(false);
    expect(await q.stats()).toMatchObject({
      queued: 0,
      delayed: 0,
      processing: 0,
      completed: 0,
      deadLettered: 0,
    });
    release();
    // The queue works again afterwards.
    const id = await q.submitTask('again');
    expect(await q.waitForResult(id, { timeout: 10 })).toBe(1);
    await w.stop();
    await q.obliterate();
    expect(await q.getTask(id)).toBeNull();
  });

  it('works on a queue that never saw a task, and a closed queue refuses with ClosedError', async () => {
    const q = queue();
    for (const status of ['queued', 'processing', 'completed'] as const) {
      expect(await q.listTasks({ status })).toEqual([]);
    }
    expect(await q.clean({ status: 'failed' })).toBe(0);
    await q.obliterate();
    expect(await q.isPaused()).toBe(false);
    await q.close();
    for (const p of [
      q.pause(),
      q.resume(),
      q.isPaused(),
      q.listTasks({ status: 'queued' }),
      q.clean({ status: 'completed' }),
      q.obliterate(),
    ]) {
      expect(isClosedError(await rejection(p))).toBe(true);
    }
  });

  it('a custom backend without the admin capability gets a ValidationError naming it', async () => {
    const inner = queue();
    const {
      listTasks: _l,
      setPaused: _s,
      isPaused: _i,
      clean: _c,
      obliterate: _o,
      ...rest
    } = Object.fromEntries(
      [
        'submit',
        'get',
        'cancel',
        'claim',
        'complete',
        'fail',
        'heartbeat',
        'release',
        'progress',
        'openWaiter',
        'stats',
        'deadLetters',
        'redrive',
        'close',
        'listTasks',
        'setPaused',
        'isPaused',
        'clean',
        'obliterate',
      ].map((k) => [
        k,
        (inner.backend as unknown as Record<string, (...a: unknown[]) => unknown>)[k]?.bind(
          inner.backend,
        ),
      ]),
    );
    const q = new TaskQueue({ name: 'custom', backend: { kind: 'custom', ...rest } as never });
    opened.push(q);
    const e = await rejection(q.pause());
    expect(isValidationError(e)).toBe(true);
    expect((e as { option?: string }).option).toBe('backend');
    expect(isValidationError(await rejection(q.listTasks({ status: 'queued' })))).toBe(true);
  });

  it('refuses bad listing, cleaning and obliterate options with ValidationError', async () => {
    const q = queue();
    const bad: unknown[] = [
      undefined,
      null,
      {},
      { status: 'nope' },
      { status: '__proto__' },
      { status: 'queued', limit: 0 },
      { status: 'queued', limit: 1001 },
      { status: 'queued', limit: Number.NaN },
      { status: 'queued', offset: -1 },
      { status: 'queued', offset: 1.5 },
      { status: 'queued', offset: '2' },
    ];
    for (const o of bad) {
      expect(isValidationError(await rejection(q.listTasks(o as never)))).toBe(true);
    }
    const badClean: unknown[] = [
      undefined,
      {},
      { status: 'queued' },
      { status: 'processing' },
      { status: 'constructor' },
      { status: 'completed', olderThan: -1 },
      { status: 'completed', olderThan: Number.NaN },
      { status: 'completed', limit: 0 },
      { status: 'completed', limit: 'all' },
    ];
    for (const o of badClean) {
      expect(isValidationError(await rejection(q.clean(o as never)))).toBe(true);
    }
    expect(isValidationError(await rejection(q.obliterate({ force: 'yes' } as never)))).toBe(true);
    expect(isValidationError(await rejection(q.obliterate(null as never)))).toBe(true);
  });
});
