/** Submitting, running, retrying and dead-lettering: the {@link QueueBackend} contract through TaskQueue and BackgroundWorker. */
import { isTaskFailedError } from '../core/errors.js';
import type { QueueContext } from './queue-context.js';
import { sleep, until } from './util.js';

/** @internal Registers the submit, run, retry and dead-letter cases. */
export function queueRunCases({ it, expect, queue, worker }: QueueContext): void {
  it('submits, runs and reports a task by id; unknown ids are null', async () => {
    const q = await queue();
    const id = await q.submitTask({ query: 'hi' });
    const t0 = await q.getTask(id);
    expect(t0).toMatchObject({ id, status: 'queued', attempts: 0 });
    expect(t0?.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(await q.getTask('no-such-task')).toBeNull();
    const w = worker<{ query: string }, { answer: string }>(q, {
      handler: async (d, ctx) => ({ answer: `${d.query}:${ctx.taskId === id}:${ctx.attempt}` }),
    });
    await w.start();
    expect(await q.waitForResult(id, { timeout: 5 })).toEqual({ answer: 'hi:true:1' });
    const t1 = await q.getTask(id);
    expect(t1).toMatchObject({ status: 'completed', result: { answer: 'hi:true:1' }, attempts: 1 });
    expect(t1?.updatedAt).toBeGreaterThanOrEqual(t1?.createdAt ?? Number.POSITIVE_INFINITY);
  });

  it('treats taskId as an idempotency key', async () => {
    const q = await queue();
    let runs = 0;
    expect(await q.submitTask({ n: 1 }, { taskId: 'job-1' })).toBe('job-1');
    expect(await q.submitTask({ n: 2 }, { taskId: 'job-1' })).toBe('job-1');
    const ids = await q.submitTasks([{ n: 3 }, { n: 4 }], { taskIds: ['job-1', 'job-2'] });
    expect(ids).toEqual(['job-1', 'job-2']);
    const w = worker<{ n: number }, number>(q, {
      handler: (d) => {
        runs++;
        return d.n;
      },
    });
    await w.start();
    expect(await q.waitForResult('job-1', { timeout: 5 })).toBe(1);
    expect(await q.waitForResult('job-2', { timeout: 5 })).toBe(4);
    await sleep(50);
    expect(runs).toBe(2);
    // Once finished, the id still dedupes for as long as the task is kept.
    expect(await q.submitTask({ n: 9 }, { taskId: 'job-1' })).toBe('job-1');
    expect(await q.waitForResult('job-1', { timeout: 5 })).toBe(1);
  });

  it('submits in bulk with ids in order and runs every task once', async () => {
    const q = await queue();
    const n = 1200;
    const ids = await q.submitTasks(Array.from({ length: n }, (_, i) => ({ i })));
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
    const seen = new Map<number, number>();
    const w = worker<{ i: number }, number>(q, {
      numWorkers: 16,
      handler: (d) => {
        seen.set(d.i, (seen.get(d.i) ?? 0) + 1);
        return d.i * 2;
      },
    });
    await w.start();
    await until(async () => (await q.stats()).completed === n, 15_000);
    expect(seen.size).toBe(n);
    expect([...seen.values()].every((c) => c === 1)).toBe(true);
    expect(await q.waitForResult(ids[777] as string)).toBe(777 * 2);
    const s = await q.stats();
    expect(s).toMatchObject({ queued: 0, delayed: 0, processing: 0, completed: n, failed: 0 });
  });

  it('holds delayed tasks until due and runs higher priorities first', async () => {
    const q = await queue();
    const order: string[] = [];
    // 3 s, not less: the submits and stats below must all happen before it is due, which a
    // loaded machine can stretch past several hundred milliseconds.
    const submittedAt = Date.now();
    const delayed = await q.submitTask('late', { delay: 3 });
    expect((await q.getTask(delayed))?.status).toBe('delayed');
    for (const [name, priority] of [
      ['low', 0],
      ['mid', 5],
      ['high', 9],
      ['mid2', 5],
    ] as const) {
      await q.submitTask(name, { priority });
    }
    expect((await q.stats()).queued).toBe(4);
    expect((await q.stats()).delayed).toBe(1);
    let lateAt = 0;
    const w = worker<string, null>(q, {
      numWorkers: 1,
      handler: (d) => {
        order.push(d);
        if (d === 'late') lateAt = Date.now();
        return null;
      },
    });
    await w.start();
    await q.waitForResult(delayed, { timeout: 15 });
    expect(order).toEqual(['high', 'mid', 'mid2', 'low', 'late']);
    expect(lateAt - submittedAt).toBeGreaterThanOrEqual(2900);
  });

  it('retries with backoff, then succeeds; emits retrying', async () => {
    const q = await queue();
    const retrying: number[] = [];
    const w = worker<null, string>(q, {
      attempts: 3,
      backoff: { type: 'exponential', delay: 0.05, jitter: true },
      handler: (_d, ctx) => {
        if (ctx.attempt < 3) throw new Error(`flaky ${ctx.attempt}`);
        return 'ok';
      },
    });
    w.on('retrying', (e) => retrying.push(e.attempt));
    await w.start();
    const id = await q.submitTask(null);
    expect(await q.waitForResult(id, { timeout: 5 })).toBe('ok');
    expect(retrying).toEqual([1, 2]);
    const t = await q.getTask(id);
    expect(t).toMatchObject({ status: 'completed', attempts: 3, result: 'ok' });
  });

  it('dead-letters after the last attempt, and redrives', async () => {
    const q = await queue();
    let fail = true;
    const dead: string[] = [];
    const failed: string[] = [];
    const w = worker<null, string>(q, {
      attempts: 2,
      backoff: { delay: 0.02 },
      handler: () => {
        if (fail) throw new TypeError('always broken');
        return 'fixed';
      },
    });
    w.on('deadLettered', (e) => dead.push(e.taskId));
    w.on('failed', (e) => failed.push(e.error.message));
    await w.start();
    const id = await q.submitTask(null);
    const err = (await q.waitForResult(id, { timeout: 5 }).catch((e) => e)) as Error;
    expect(isTaskFailedError(err)).toBe(true);
    expect(err.message).toContain('always broken');
    expect((err.cause as Error).name).toBe('TypeError');
    const t = await q.getTask(id);
    expect(t).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: 'always broken',
      errorName: 'TypeError',
    });
    await until(() => dead.length === 1);
    expect(dead).toEqual([id]);
    expect(failed).toEqual(['always broken']);
    const dl = await q.deadLetters();
    expect(dl.map((d) => d.id)).toEqual([id]);
    expect(dl[0]?.error).toBe('always broken');
    expect(await q.stats()).toMatchObject({ failed: 1, deadLettered: 1 });
    fail = false;
    expect(await q.redrive()).toBe(1);
    expect(await q.waitForResult(id, { timeout: 5 })).toBe('fixed');
    expect(await q.deadLetters()).toEqual([]);
    expect(await q.redrive([id])).toBe(0);
  });
}
