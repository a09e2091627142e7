/**
 * API contract of TaskQueue and BackgroundWorker, written from the issue text, on memory,
 * Redis standalone and Redis Cluster.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as workerModule from '../../src/worker/index.js';
import {
  BackgroundWorker,
  CancelledError,
  NotFoundError,
  TaskQueue,
  TimeoutError,
  UnrecoverableError,
  ValidationError,
} from '../../src/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const s = servers();

type RedisOpt = { redis?: string | { nodes: { host: string; port: number }[] } };
const backends: [string, () => RedisOpt][] = [
  ['memory', () => ({})],
  ['redis', () => ({ redis: s.redisUrl })],
  ['cluster', () => ({ redis: { nodes: s.clusterNodes } })],
];

function qname(): string {
  return uniquePrefix('c7').replace(/:$/, '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()?.();
});

it('worker API contract: exported from azscale and azscale/worker', () => {
  expect(workerModule.TaskQueue).toBe(TaskQueue);
  expect(workerModule.BackgroundWorker).toBe(BackgroundWorker);
  expect(new UnrecoverableError('x')).toBeInstanceOf(Error);
  // The error classes the issue names are importable from the subpath too.
  expect(workerModule.UnrecoverableError).toBe(UnrecoverableError);
  expect(workerModule.TimeoutError).toBe(TimeoutError);
});

describe.each(backends)('worker API contract on %s', (_label, opts) => {
  function queue(extra: { resultTtl?: number } = {}): TaskQueue {
    const q = new TaskQueue({ name: qname(), ...opts(), ...extra });
    cleanup.push(() => q.close());
    return q;
  }
  function worker(o: ConstructorParameters<typeof BackgroundWorker>[0]): BackgroundWorker {
    const w = new BackgroundWorker(o);
    cleanup.push(() => w.stop({ timeout: 1 }));
    return w;
  }

  it('submitTask -> getTask shape -> worker runs it -> waitForResult returns the result', async () => {
    const q = queue({ resultTtl: 86400 });
    const id = await q.submitTask({ query: 'hello' });
    expect(typeof id).toBe('string');
    const queued = await q.getTask(id);
    expect(queued).toMatchObject({ id, status: 'queued', attempts: 0 });
    expect(typeof queued?.createdAt).toBe('number');
    expect(typeof queued?.updatedAt).toBe('number');

    const seen: unknown[] = [];
    const w = worker({
      queue: q,
      numWorkers: 2,
      handler: async (data, ctx) => {
        expect(ctx.taskId).toBe(id);
        expect(ctx.attempt).toBe(1);
        expect(ctx.signal).toBeInstanceOf(AbortSignal);
        await ctx.progress(50);
        seen.push(data);
        return { answer: (data as { query: string }).query.toUpperCase() };
      },
    });
    const completed: unknown[] = [];
    w.on('completed', (e) => completed.push(e));
    await w.start();
    await expect(q.waitForResult(id, { timeout: 10 })).resolves.toEqual({ answer: 'HELLO' });
    const done = await q.getTask(id);
    expect(done).toMatchObject({
      id,
      status: 'completed',
      result: { answer: 'HELLO' },
      progress: 50,
      attempts: 1,
    });
    expect(done?.updatedAt).toBeGreaterThanOrEqual(done?.createdAt ?? Number.POSITIVE_INFINITY);
    expect(seen).toEqual([{ query: 'hello' }]);
    expect(completed).toHaveLength(1);
    await w.stop({ timeout: 5 });
  });

  it('getTask of an unknown id is null', async () => {
    const q = queue();
    await expect(q.getTask('no-such-task')).resolves.toBeNull();
  });

  it('submitTasks: bulk, ids in order; taskId is an idempotency key', async () => {
    const q = queue();
    const ids = await q.submitTasks([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    const a = await q.submitTask({ n: 'first' }, { taskId: 'job-1' });
    const b = await q.submitTask({ n: 'second' }, { taskId: 'job-1' });
    expect(a).toBe('job-1');
    expect(b).toBe('job-1');
    expect((await q.stats()).queued).toBe(4);
    const order: number[] = [];
    const w = worker({
      queue: q,
      numWorkers: 1,
      handler: async (d) => {
        const n = (d as { n: number | string }).n;
        if (typeof n === 'number') order.push(n);
        return n;
      },
    });
    await w.start();
    for (const [i, id] of ids.entries())
      await expect(q.waitForResult(id, { timeout: 10 })).resolves.toBe(i + 1);
    await expect(q.waitForResult('job-1', { timeout: 10 })).resolves.toBe('first');
    expect(order).toEqual([1, 2, 3]);
  });

  it('waitForResult rejects with the task error after retries, and TimeoutError when not done', async () => {
    const q = queue();
    const events = { retrying: 0, failed: 0, deadLettered: 0 };
    const w = worker({
      queue: q,
      numWorkers: 2,
      attempts: 2,
      backoff: { type: 'exponential', delay: 0.05, jitter: true },
      handler: async (d) => {
        if ((d as { slow?: boolean }).slow) {
          await sleep(3000);
          return 'late';
        }
        throw new Error('model exploded');
      },
    });
    w.on('retrying', () => events.retrying++);
    w.on('failed', () => events.failed++);
    w.on('deadLettered', () => events.deadLettered++);
    await w.start();
    const bad = await q.submitTask({ slow: false });
    await expect(q.waitForResult(bad, { timeout: 10 })).rejects.toThrow('model exploded');
    const info = await q.getTask(bad);
    expect(info).toMatchObject({ status: 'failed', attempts: 2 });
    expect(info?.error).toContain('model exploded');
    expect(events).toEqual({ retrying: 1, failed: 1, deadLettered: 1 });

    const dead = await q.deadLetters();
    expect(dead.map((t) => t.id)).toContain(bad);
    const st = await q.stats();
    expect(st.failed).toBe(1);
    expect(st.deadLettered).toBe(1);

    const slow = await q.submitTask({ slow: true });
    const t0 = Date.now();
    await expect(q.waitForResult(slow, { timeout: 0.3 })).rejects.toBeInstanceOf(TimeoutError);
    expect(Date.now() - t0).toBeLessThan(2000);
    await w.stop({ timeout: 0.1 });
  });

  it('UnrecoverableError skips retries; redrive runs a dead letter again', async () => {
    const q = queue();
    let fail = true;
    let calls = 0;
    const w = worker({
      queue: q,
      attempts: 5,
      backoff: { type: 'exponential', delay: 0.05, jitter: false },
      handler: async () => {
        calls++;
        if (fail) throw new UnrecoverableError('bad input');
        return 'ok';
      },
    });
    await w.start();
    const id = await q.submitTask({});
    await expect(q.waitForResult(id, { timeout: 10 })).rejects.toThrow('bad input');
    expect(calls).toBe(1);
    expect((await q.deadLetters()).map((t) => t.id)).toEqual([id]);
    fail = false;
    expect(await q.redrive([id])).toBe(1);
    await expect(q.waitForResult(id, { timeout: 10 })).resolves.toBe('ok');
    expect(await q.deadLetters()).toEqual([]);
    expect((await q.getTask(id))?.status).toBe('completed');
  });

  it('per-task timeout aborts ctx.signal and fails the attempt', async () => {
    const q = queue();
    let aborted = false;
    const w = worker({
      queue: q,
      attempts: 1,
      handler: (_d, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
    });
    await w.start();
    const id = await q.submitTask({}, { timeout: 0.2, attempts: 1 });
    await expect(q.waitForResult(id, { timeout: 10 })).rejects.toThrow();
    expect(aborted).toBe(true);
    expect((await q.getTask(id))?.status).toBe('failed');
  });

  it('worker-level timeout option aborts too', async () => {
    const q = queue();
    const w = worker({
      queue: q,
      attempts: 1,
      timeout: 0.2,
      handler: (_d, ctx) =>
        new Promise((_r, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
    });
    await w.start();
    const id = await q.submitTask({});
    await expect(q.waitForResult(id, { timeout: 10 })).rejects.toThrow();
    expect((await q.getTask(id))?.status).toBe('failed');
  });

  it('cancelTask stops a queued task from starting and aborts a running one', async () => {
    const q = queue();
    const started: string[] = [];
    const w = worker({
      queue: q,
      numWorkers: 1,
      handler: (d, ctx) =>
        new Promise((resolve, reject) => {
          started.push((d as { k: string }).k);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
          setTimeout(() => resolve('finished'), 5000);
        }),
    });
    const running = await q.submitTask({ k: 'a' });
    const waiting = await q.submitTask({ k: 'b' });
    await w.start();
    for (let i = 0; i < 100 && started.length === 0; i++) await sleep(20);
    expect(started).toEqual(['a']);
    await q.cancelTask(waiting);
    await q.cancelTask(running);
    await expect(q.waitForResult(running, { timeout: 5 })).rejects.toBeInstanceOf(CancelledError);
    expect((await q.getTask(running))?.status).toBe('cancelled');
    expect((await q.getTask(waiting))?.status).toBe('cancelled');
    await sleep(200);
    expect(started).toEqual(['a']);
  });

  it('delay: the task is delayed, then runs; priority orders queued tasks', async () => {
    const q = queue();
    const later = await q.submitTask({ k: 'later' }, { delay: 0.4 });
    expect((await q.getTask(later))?.status).toBe('delayed');
    expect((await q.stats()).delayed).toBe(1);
    const low = await q.submitTask({ k: 'low' }, { priority: 1 });
    const high = await q.submitTask({ k: 'high' }, { priority: 10 });
    const order: string[] = [];
    const w = worker({
      queue: q,
      numWorkers: 1,
      handler: async (d) => {
        order.push((d as { k: string }).k);
        return null;
      },
    });
    await w.start();
    await q.waitForResult(low, { timeout: 5 });
    await q.waitForResult(high, { timeout: 5 });
    await q.waitForResult(later, { timeout: 5 });
    expect(order).toEqual(['high', 'low', 'later']);
  });

  it('stats(): queued, delayed, processing, completed, failed, deadLettered, oldest age', async () => {
    const q = queue();
    await q.submitTasks([1, 2]);
    await sleep(120);
    const st = await q.stats();
    expect(st).toMatchObject({
      queued: 2,
      delayed: 0,
      processing: 0,
      completed: 0,
      failed: 0,
      deadLettered: 0,
    });
    expect(st.oldestAge).toBeGreaterThan(0.05);
    expect(st.oldestAge).toBeLessThan(30);
  });

  it('BackgroundWorker with a queue name: worker.submitTask/getTask/waitForResult; stop lets in-flight finish', async () => {
    const name = qname();
    let finished = 0;
    const w = new BackgroundWorker({
      queue: name,
      ...opts(),
      numWorkers: 4,
      visibilityTimeout: 30,
      handler: async (d: unknown) => {
        await sleep(150);
        finished++;
        return (d as number) * 2;
      },
    });
    const id = await w.submitTask(21);
    expect((await w.getTask(id))?.status).toBe('queued');
    await w.start();
    await expect(w.waitForResult(id, { timeout: 10 })).resolves.toBe(42);
    const ids = await Promise.all([1, 2, 3].map((n) => w.submitTask(n)));
    for (let i = 0; i < 100; i++) {
      const st = await Promise.all(ids.map((x) => w.getTask(x)));
      if (st.every((t) => t?.status === 'processing')) break;
      await sleep(10);
    }
    // Another handle on the same name (opened while the worker's queue is open: a memory queue
    // lives as long as some handle of its name does) sees the results.
    const q = new TaskQueue({ name, ...opts() });
    cleanup.push(() => q.close());
    await w.stop({ timeout: 5 });
    expect(finished).toBe(4);
    for (const [i, x] of ids.entries()) expect((await q.getTask(x))?.result).toBe((i + 1) * 2);
  });

  it('stop({ timeout }) releases an unfinished task at once for another worker', async () => {
    const q = queue();
    const w1 = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 30,
      handler: (_d, ctx) =>
        new Promise((_r, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
    });
    await w1.start();
    const id = await q.submitTask({});
    for (let i = 0; i < 100 && (await q.getTask(id))?.status !== 'processing'; i++) await sleep(20);
    await w1.stop({ timeout: 0.1 });
    const w2 = worker({ queue: q, visibilityTimeout: 30, handler: async (_d, ctx) => ctx.attempt });
    await w2.start();
    const t0 = Date.now();
    await expect(q.waitForResult(id, { timeout: 10 })).resolves.toBeGreaterThanOrEqual(1);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('bad input: typed errors', async () => {
    const q = queue();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(q.submitTask(cyclic)).rejects.toThrow();
    await expect(q.submitTask({}, { delay: -1 })).rejects.toBeInstanceOf(ValidationError);
    await expect(q.submitTask({}, { taskId: '' })).rejects.toBeInstanceOf(ValidationError);
    await expect(q.waitForResult('unknown-id', { timeout: 1 })).rejects.toBeInstanceOf(
      NotFoundError,
    );
    expect(() => new BackgroundWorker({ handler: async () => 1, numWorkers: 0 })).toThrow(
      ValidationError,
    );
    expect(() => new TaskQueue({ name: 'x', resultTtl: -5 })).toThrow(ValidationError);
  });
});

describe('worker API contract: defaults', () => {
  it('a BackgroundWorker without queue uses the queue named default', async () => {
    const w = new BackgroundWorker({ handler: async (d: unknown) => d });
    try {
      expect(w.queue.name).toBe('default');
      await w.start();
      const id = await w.submitTask('x');
      await expect(w.waitForResult(id, { timeout: 5 })).resolves.toBe('x');
    } finally {
      await w.stop({ timeout: 1 });
    }
  });
});
