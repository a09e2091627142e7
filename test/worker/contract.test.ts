/**
 * The QueueBackend contract, through TaskQueue and BackgroundWorker, on memory, Redis standalone
 * and Redis Cluster. Every test uses its own queue name.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BackgroundWorker,
  type BackgroundWorkerOptions,
  type ClaimedTask,
  type RedisQueueBackend,
  TaskQueue,
  type TaskQueueOptions,
} from '../../src/worker/index.js';
import {
  UnrecoverableError,
  isCancelledError,
  isNotFoundError,
  isTaskFailedError,
  isTimeoutError,
} from '../../src/core/errors.js';
import { servers } from '../harness/env.js';

type Kind = 'memory' | 'redis' | 'cluster';

function redisFor(kind: Kind): TaskQueueOptions['redis'] {
  if (kind === 'memory') return undefined;
  const s = servers();
  return kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(10);
  }
  throw new Error('condition not met in time');
}

describe.each<Kind>(['memory', 'redis', 'cluster'])('worker contract: %s', (kind) => {
  const opened: { close(): Promise<void> }[] = [];
  const workers: BackgroundWorker[] = [];

  function queue(extra: Partial<TaskQueueOptions> = {}): TaskQueue {
    const q = new TaskQueue({
      name: `wq-${randomBytes(5).toString('hex')}`,
      redis: redisFor(kind),
      prefix: 'azs-test-worker:',
      ...extra,
    });
    opened.push(q);
    return q;
  }

  function worker<D = unknown, R = unknown>(
    q: TaskQueue,
    opts: Omit<BackgroundWorkerOptions<D, R>, 'queue'>,
  ): BackgroundWorker<D, R> {
    const w = new BackgroundWorker<D, R>({ queue: q, visibilityTimeout: 5, ...opts });
    workers.push(w as BackgroundWorker);
    return w;
  }

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
    for (const q of opened.splice(0)) await q.close();
  });

  it('submits, runs and reports a task by id; unknown ids are null', async () => {
    const q = queue();
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
    const q = queue();
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
    const q = queue();
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
    if (kind !== 'memory') {
      // Acknowledged entries are deleted: the streams do not grow with finished tasks.
      const { Redis, Cluster } = await import('ioredis');
      const client =
        kind === 'redis' ? new Redis(servers().redisUrl) : new Cluster(servers().clusterNodes);
      try {
        const keys = (q.backend as RedisQueueBackend).queueKeys;
        expect(await client.xlen(keys[0] as string)).toBe(0);
        expect(await client.xlen(keys[1] as string)).toBe(0);
        // Finished tasks carry their expiry (in the queue's expiry set).
        const expiresAt = await client.zscore(keys[10] as string, ids[0] as string);
        expect(Number(expiresAt)).toBeGreaterThan(Date.now());
      } finally {
        client.disconnect();
      }
    }
  });

  it('holds delayed tasks until due and runs higher priorities first', async () => {
    const q = queue();
    const order: string[] = [];
    // 3 s, not 0.4: the submits and stats below must all happen before it is due, which a
    // loaded machine can stretch past 400 ms.
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
    const q = queue();
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
    const q = queue();
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

  it('skips retries on UnrecoverableError', async () => {
    const q = queue();
    let calls = 0;
    const w = worker(q, {
      attempts: 5,
      backoff: { delay: 0.01 },
      handler: () => {
        calls++;
        throw new UnrecoverableError('bad input, do not retry');
      },
    });
    await w.start();
    const id = await q.submitTask({});
    await expect(q.waitForResult(id, { timeout: 5 })).rejects.toThrow(/do not retry/);
    expect(calls).toBe(1);
    expect((await q.getTask(id))?.errorName).toBe('UnrecoverableError');
  });

  it('aborts ctx.signal after the per-task timeout and fails the attempt', async () => {
    const q = queue();
    let aborted: unknown;
    const w = worker(q, {
      attempts: 1,
      timeout: 5,
      handler: (_d, ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = ctx.signal.reason;
            reject(ctx.signal.reason);
          });
        }),
    });
    await w.start();
    const t0 = Date.now();
    const id = await q.submitTask({}, { timeout: 0.2 });
    const err = await q.waitForResult(id, { timeout: 5 }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(isTimeoutError(aborted)).toBe(true);
    expect(isTaskFailedError(err)).toBe(true);
    expect((await q.getTask(id))?.errorName).toBe('TimeoutError');
  });

  it('cancels a queued task (never starts) and a running one (signal aborts)', async () => {
    const q = queue();
    const started: string[] = [];
    let abortedWith: unknown;
    const w = worker<string, string>(q, {
      numWorkers: 1,
      handler: (d, ctx) =>
        new Promise((resolve) => {
          started.push(d);
          ctx.signal.addEventListener('abort', () => {
            abortedWith = ctx.signal.reason;
            resolve('late');
          });
          if (d !== 'long') resolve(d);
        }),
    });
    const long = await q.submitTask('long');
    const queued = await q.submitTask('queued');
    await w.start();
    await until(() => started.includes('long'));
    expect(await q.cancelTask(queued)).toBe(true);
    expect((await q.getTask(queued))?.status).toBe('cancelled');
    expect(await q.cancelTask(long)).toBe(true);
    await until(() => abortedWith !== undefined);
    expect(isCancelledError(abortedWith)).toBe(true);
    const err = await q.waitForResult(long, { timeout: 5 }).catch((e) => e);
    expect(isCancelledError(err)).toBe(true);
    await sleep(100);
    expect(started).toEqual(['long']);
    expect((await q.getTask(long))?.status).toBe('cancelled');
    // The cancelled delivery is acknowledged at once, not left for a reclaim (visibilityTimeout
    // 5 s; the bound leaves a loaded machine room below it).
    await until(async () => (await q.stats()).processing === 0, 4000);
    expect(await q.cancelTask(long)).toBe(false);
    await expect(q.cancelTask('missing-id')).rejects.toSatisfy(isNotFoundError);
  });

  it('a running task is cancelled from another queue handle within a heartbeat', async () => {
    const q = queue();
    const other = new TaskQueue({
      name: q.name,
      redis: redisFor(kind),
      prefix: 'azs-test-worker:',
    });
    opened.push(other);
    let aborted = false;
    const w = worker(q, {
      visibilityTimeout: 0.6,
      handler: (_d, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(null);
          });
        }),
    });
    await w.start();
    const id = await q.submitTask({});
    await until(async () => (await q.getTask(id))?.status === 'processing');
    expect(await other.cancelTask(id)).toBe(true);
    await until(() => aborted, 4000);
    await until(async () => (await q.stats()).processing === 0, 4000);
    expect((await q.getTask(id))?.status).toBe('cancelled');
  });

  it('stop() lets in-flight tasks finish, releases unfinished ones at once', async () => {
    const q = queue();
    const w1 = worker<string, string>(q, {
      numWorkers: 2,
      visibilityTimeout: 30,
      handler: (d, ctx) =>
        new Promise((resolve, reject) => {
          if (d === 'quick') setTimeout(() => resolve('quick done'), 100);
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason));
        }),
    });
    await w1.start();
    const quick = await q.submitTask('quick');
    const stuck = await q.submitTask('stuck');
    await until(async () => (await q.stats()).processing === 2);
    await w1.stop({ timeout: 0.3 });
    expect(await q.waitForResult(quick, { timeout: 1 })).toBe('quick done');
    const t = await q.getTask(stuck);
    // Released, not failed, and not waiting out the 30 s visibility timeout.
    expect(t).toMatchObject({ status: 'queued', attempts: 0 });
    const w2 = worker<string, string>(q, { handler: (d) => `${d} by w2` });
    await w2.start();
    expect(await q.waitForResult(stuck, { timeout: 3 })).toBe('stuck by w2');
  });

  it("reclaims a dead consumer's task after visibilityTimeout; the first result sticks", async () => {
    const q = queue();
    const b = q.backend;
    await q.submitTask({ v: 1 }, { taskId: 'reclaim-me' });
    const now = Date.now();
    const first = await b.claim({ consumer: 'dead-one', count: 5, now, defaultAttempts: 3 });
    expect(first.tasks.map((t) => t.id)).toEqual(['reclaim-me']);
    expect((await q.getTask('reclaim-me'))?.status).toBe('processing');
    // Not idle long enough yet.
    const early = await b.claim({
      consumer: 'alive',
      count: 5,
      now: Date.now(),
      reclaimIdleMs: 10_000,
      defaultAttempts: 3,
    });
    expect(early.tasks).toEqual([]);
    await sleep(120);
    const second = await b.claim({
      consumer: 'alive',
      count: 5,
      now: Date.now(),
      reclaimIdleMs: 100,
      defaultAttempts: 3,
    });
    expect(second.tasks.map((t) => [t.id, t.attempt])).toEqual([['reclaim-me', 2]]);
    const old = first.tasks[0]!;
    const cur = second.tasks[0]!;
    // The old holder's heartbeat and failure no longer count.
    expect(await b.heartbeat('dead-one', [old], Date.now())).toEqual(['lost']);
    expect(
      await b.fail(
        [{ ...old, error: '{"name":"Error","message":"x"}', retryAt: null }],
        Date.now(),
      ),
    ).toEqual(['ignored']);
    expect(await b.heartbeat('alive', [cur], Date.now())).toEqual(['ok']);
    await b.complete([{ ...cur, result: '"second"' }], Date.now());
    await b.complete([{ ...old, result: '"late duplicate"' }], Date.now());
    expect(await q.getTask('reclaim-me')).toMatchObject({ status: 'completed', result: 'second' });
    expect((await q.stats()).processing).toBe(0);
  });

  it('a task reclaimed more often than its attempts goes to the dead letters', async () => {
    const q = queue();
    const b = q.backend;
    await q.submitTask(null, { taskId: 'poison', attempts: 1 });
    await b.claim({ consumer: 'c1', count: 1, now: Date.now(), defaultAttempts: 3 });
    await sleep(30);
    const r = await b.claim({
      consumer: 'c2',
      count: 1,
      now: Date.now(),
      reclaimIdleMs: 10,
      defaultAttempts: 3,
    });
    expect(r.tasks).toEqual([]);
    expect(await q.getTask('poison')).toMatchObject({
      status: 'failed',
      errorName: 'WorkerLostError',
    });
    expect((await q.deadLetters()).map((t) => t.id)).toEqual(['poison']);
  });

  it('records progress and expires finished tasks after resultTtl', async () => {
    const q = queue({ resultTtl: 0.4 });
    const w = worker<null, number>(q, {
      handler: async (_d, ctx) => {
        await ctx.progress(50);
        return 1;
      },
    });
    const id = await q.submitTask(null);
    await w.start();
    expect(await q.waitForResult(id, { timeout: 5 })).toBe(1);
    expect(await q.getTask(id)).toMatchObject({ status: 'completed', progress: 50 });
    await sleep(600);
    expect(await q.getTask(id)).toBeNull();
    await expect(q.waitForResult(id, { timeout: 1 })).rejects.toSatisfy(isNotFoundError);
  });

  it('waitForResult never hangs: TimeoutError after its timeout', async () => {
    const q = queue();
    const id = await q.submitTask('nobody runs me');
    const t0 = Date.now();
    const err = await q.waitForResult(id, { timeout: 0.2 }).catch((e) => e);
    expect(isTimeoutError(err)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1500);
    await expect(q.waitForResult('unknown', { timeout: 1 })).rejects.toSatisfy(isNotFoundError);
  });

  it('stats report queued, processing and the oldest waiting age', async () => {
    const q = queue();
    await q.submitTasks([1, 2, 3]);
    await sleep(120);
    const s = await q.stats();
    expect(s.queued).toBe(3);
    expect(s.processing).toBe(0);
    expect(s.oldestAge).toBeGreaterThanOrEqual(0.1);
    expect(s.oldestAge).toBeLessThan(30);
    await q.backend.claim({ consumer: 'c', count: 2, now: Date.now(), defaultAttempts: 3 });
    expect(await q.stats()).toMatchObject({ queued: 1, processing: 2 });
  });

  it.skipIf(kind === 'memory')(
    'removes consumers of crashed workers once they hold nothing',
    async () => {
      const q = queue();
      const b = q.backend as RedisQueueBackend;
      await q.submitTask(1);
      const got = await b.claim({
        consumer: 'ghost',
        count: 1,
        now: Date.now(),
        defaultAttempts: 3,
      });
      await b.complete([{ ...(got.tasks[0] as ClaimedTask), result: '1' }], Date.now());
      const { Redis, Cluster } = await import('ioredis');
      const client =
        kind === 'redis' ? new Redis(servers().redisUrl) : new Cluster(servers().clusterNodes);
      try {
        const names = async () =>
          (
            (await client.xinfo('CONSUMERS', b.queueKeys[0] as string, 'workers')) as string[][]
          ).map((c) => c[1]);
        expect(await names()).toContain('ghost');
        await sleep(150);
        await b.claim({
          consumer: 'alive',
          count: 1,
          now: Date.now(),
          reclaimIdleMs: 10,
          defaultAttempts: 3,
        });
        expect(await names()).not.toContain('ghost');
      } finally {
        client.disconnect();
      }
    },
  );

  it.skipIf(kind === 'memory')(
    'recovers when the server forgets its scripts (NOSCRIPT)',
    async () => {
      const q = queue();
      const w = worker<number, number>(q, { handler: (n) => n + 1 });
      await w.start();
      expect(await q.waitForResult(await q.submitTask(1), { timeout: 5 })).toBe(2);
      const { Redis, Cluster } = await import('ioredis');
      if (kind === 'redis') {
        const r = new Redis(servers().redisUrl);
        await r.script('FLUSH');
        r.disconnect();
      } else {
        const c = new Cluster(servers().clusterNodes);
        await new Promise((resolve) => c.once('ready', resolve));
        await Promise.all(c.nodes('master').map((n) => n.script('FLUSH')));
        c.disconnect();
      }
      expect(await q.waitForResult(await q.submitTask(2), { timeout: 5 })).toBe(3);
      expect((await q.stats()).completed).toBe(2);
    },
  );

  it("the worker owns a queue given by name and offers the seed's single-process form", async () => {
    const name = `wq-${randomBytes(5).toString('hex')}`;
    const w = new BackgroundWorker<{ query: string }, string>({
      queue: name,
      redis: redisFor(kind),
      numWorkers: 2,
      handler: (d) => d.query.toUpperCase(),
    });
    workers.push(w as BackgroundWorker);
    await w.start();
    const id = await w.submitTask({ query: 'abc' });
    expect(await w.waitForResult(id, { timeout: 5 })).toBe('ABC');
    expect((await w.getTask(id))?.status).toBe('completed');
    await w.stop();
    expect(w.queue.isClosed).toBe(true);
    // Restartable: a fresh queue object is made for the next run.
    await w.start();
    const id2 = await w.submitTask({ query: 'def' });
    expect(await w.waitForResult(id2, { timeout: 5 })).toBe('DEF');
  });
});
