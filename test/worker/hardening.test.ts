/**
 * Issue 13 for the worker: durations of any accepted size (nothing fires early), hostile
 * durations rejected naming the option and its maximum, and `maxQueued` on every backend.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isLimitExceededError, isTimeoutError, isValidationError } from '../../src/core/errors.js';
import { MAX_DURATION_SECONDS } from '../../src/core/timers.js';
import {
  BackgroundWorker,
  type BackgroundWorkerOptions,
  TaskQueue,
} from '../../src/worker/index.js';
import { KINDS, rejection, sleep, until, workerFixture } from './fixture.js';

const DAY = 86_400;

function validation(fn: () => unknown): { option?: string; context: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    return e as { option?: string; context: Record<string, unknown> };
  }
  throw new Error('expected a ValidationError');
}

describe.each(KINDS)('worker hardening: %s', (kind) => {
  const { queue, worker } = workerFixture(kind, { namePrefix: 'wh', prefix: 'azs-test-worker:' });

  it('a 30-day task timeout (task or worker option) does not fire at once', async () => {
    const q = queue();
    const errors: unknown[] = [];
    const w = worker(q, {
      timeout: 30 * DAY,
      attempts: 1,
      // Long enough for an overflowed 30-day timer (it fires after 1 ms) to win the race.
      handler: async (d: { ms: number }) => {
        await sleep(d.ms);
        return 'done';
      },
    });
    w.on('failed', (e) => errors.push(e.error));
    await w.start();
    const byWorker = await q.submitTask({ ms: 150 });
    const byTask = await q.submitTask({ ms: 150 }, { timeout: 30 * DAY });
    const longest = await q.submitTask({ ms: 150 }, { timeout: MAX_DURATION_SECONDS });
    for (const id of [byWorker, byTask, longest]) {
      expect(await q.waitForResult(id, { timeout: 30 })).toBe('done');
    }
    expect(errors.filter(isTimeoutError)).toEqual([]);
  });

  it('a short timeout still fires (the chained timer is a real timer)', async () => {
    const q = queue();
    const w = worker(q, {
      attempts: 1,
      handler: (_d, ctx) =>
        new Promise((_r, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        ),
    });
    await w.start();
    const id = await q.submitTask({}, { timeout: 0.2 });
    await until(async () => (await q.getTask(id))?.status === 'failed');
    expect((await q.getTask(id))?.errorName).toBe('TimeoutError');
  });

  it('long delays, backoffs, visibility timeouts and waits are accepted and do not fire early', async () => {
    const q = queue();
    let runs = 0;
    const w = worker(q, {
      visibilityTimeout: 300 * DAY,
      backoff: { delay: 40 * DAY, maxDelay: 40 * DAY, jitter: false },
      attempts: 2,
      handler: async () => {
        runs++;
        throw new Error('try again in 40 days');
      },
    });
    await w.start();
    const delayed = await q.submitTask({}, { delay: 30 * DAY });
    const failing = await q.submitTask({});
    await until(async () => (await q.getTask(failing))?.status === 'delayed');
    // waitForResult with a 30-day timeout returns at once for a finished task and otherwise waits.
    const waited = await rejection(q.waitForResult(delayed, { timeout: 0.3 }));
    expect(isTimeoutError(waited)).toBe(true);
    await sleep(300);
    expect(runs).toBe(1);
    expect((await q.getTask(delayed))?.status).toBe('delayed');
    expect((await q.getTask(failing))?.status).toBe('delayed');
    expect((await q.stats()).delayed).toBe(2);
  });

  it('maxQueued bounds waiting tasks; a full queue throws LimitExceededError and writes nothing', async () => {
    const q = queue({ maxQueued: 3 });
    expect(q.maxQueued).toBe(3);
    const a = await q.submitTask({ n: 1 }, { taskId: 'a' });
    await q.submitTask({ n: 2 }, { delay: 60 });
    await q.submitTask({ n: 3 }, { priority: 5 });
    const full = await rejection(q.submitTask({ n: 4 }, { taskId: 'd' }));
    expect(isLimitExceededError(full)).toBe(true);
    expect((full as { context: Record<string, unknown> }).context).toMatchObject({
      maxQueued: 3,
      waiting: 3,
    });
    expect(await q.getTask('d')).toBeNull();
    // Resubmitting an id the queue has adds nothing, so it is not refused.
    expect(await q.submitTask({ n: 1 }, { taskId: 'a' })).toBe(a);
    // A batch is all or nothing.
    const batch = await rejection(q.submitTasks([{ n: 5 }], { taskIds: ['e'] }));
    expect(isLimitExceededError(batch)).toBe(true);
    expect(await q.getTask('e')).toBeNull();
    const st = await q.stats();
    expect(st.queued + st.delayed).toBe(3);
  });

  it('a bulk past maxQueued says how many of its tasks were added', async () => {
    const q = queue({ maxQueued: 700 });
    const e = (await rejection(q.submitTasks(Array.from({ length: 1000 }, (_, i) => i)))) as {
      context: Record<string, unknown>;
    };
    expect(isLimitExceededError(e)).toBe(true);
    // Memory checks the whole call at once; Redis each script call of 500 tasks.
    const created = kind === 'memory' ? 0 : 500;
    expect(e.context.created).toBe(created);
    expect((await q.stats()).queued).toBe(created);
  });

  it('running tasks do not count; finishing frees room', async () => {
    const q = queue({ maxQueued: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const w = worker(q, { numWorkers: 2, handler: () => gate });
    const ids = await q.submitTasks([{}, {}]);
    await w.start();
    await until(async () => (await q.stats()).processing === 2);
    // Both tasks run: the queue has room for two more.
    await q.submitTasks([{}, {}]);
    expect(isLimitExceededError(await rejection(q.submitTask({})))).toBe(true);
    release();
    for (const id of ids) await q.waitForResult(id, { timeout: 30 });
    await until(async () => (await q.stats()).queued === 0, 30_000);
    await q.submitTasks([{}, {}]);
  });

  it('cancelling a delayed task frees its place in maxQueued', async () => {
    const q = queue({ maxQueued: 1 });
    const id = await q.submitTask({}, { delay: 30 * DAY });
    expect(isLimitExceededError(await rejection(q.submitTask({})))).toBe(true);
    await q.cancelTask(id);
    await q.submitTask({});
    expect(isLimitExceededError(await rejection(q.submitTask({})))).toBe(true);
  });

  it('concurrent submitters from two queue objects cannot overshoot maxQueued', async () => {
    const name = `wh-${randomBytes(5).toString('hex')}`;
    const q1 = queue({ name, maxQueued: 5 });
    const q2 = queue({ name, maxQueued: 5 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? q1 : q2).submitTask({ i })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter(
      (r) => r.status === 'rejected' && isLimitExceededError(r.reason),
    ).length;
    expect(ok).toBe(5);
    expect(refused).toBe(15);
    expect((await q1.stats()).queued).toBe(5);
  });
});

describe('hostile durations are rejected, naming the option and its maximum', () => {
  const bad = [Number.NaN, -1, Number.POSITIVE_INFINITY, '10' as unknown as number];

  it('TaskQueue options and submit/wait options', async () => {
    for (const v of [...bad, MAX_DURATION_SECONDS + 1]) {
      expect(validation(() => new TaskQueue({ name: 'h', resultTtl: v })).option).toBe('resultTtl');
    }
    for (const v of [...bad, 86_401]) {
      const e = validation(() => new TaskQueue({ name: 'h', metricsInterval: v }));
      expect(e.option).toBe('metricsInterval');
      if (v === 86_401) expect(e.context.max).toBe(86_400);
    }
    // A 30-day refresh interval would overflow Node's timer and refresh every millisecond.
    expect(
      validation(() => new TaskQueue({ name: 'h', metricsInterval: 30 * DAY })).context.max,
    ).toBe(86_400);
    for (const v of [0, 1.5, -3, Number.NaN]) {
      expect(validation(() => new TaskQueue({ name: 'h', maxQueued: v })).option).toBe('maxQueued');
    }
    const q = new TaskQueue({ name: `h-${randomBytes(4).toString('hex')}` });
    try {
      expect(q.maxQueued).toBe(100_000);
      for (const v of [...bad, MAX_DURATION_SECONDS + 1]) {
        for (const option of ['delay', 'timeout'] as const) {
          const e = (await rejection(q.submitTask({}, { [option]: v }))) as { option?: string };
          expect(isValidationError(e)).toBe(true);
          expect(e.option).toBe(option);
        }
        const w = (await rejection(q.waitForResult('x', { timeout: v }))) as { option?: string };
        expect(w.option).toBe('timeout');
      }
      const huge = (await rejection(q.submitTask({}, { timeout: 1e12 }))) as {
        context: Record<string, unknown>;
        message: string;
      };
      expect(huge.context.max).toBe(MAX_DURATION_SECONDS);
      expect(huge.message).toContain(String(MAX_DURATION_SECONDS));
      expect((await q.stats()).queued).toBe(0);
    } finally {
      await q.close();
    }
  });

  it('BackgroundWorker options and stop()', async () => {
    const handler = () => 1;
    const opt = (o: Partial<BackgroundWorkerOptions>) =>
      validation(() => new BackgroundWorker({ queue: 'h', handler, ...o }));
    for (const v of [...bad, MAX_DURATION_SECONDS + 1]) {
      expect(opt({ timeout: v }).option).toBe('timeout');
      expect(opt({ visibilityTimeout: v }).option).toBe('visibilityTimeout');
      expect(opt({ shutdownTimeout: v }).option).toBe('shutdownTimeout');
      expect(opt({ backoff: { delay: v } }).option).toBe('backoff.delay');
      expect(opt({ backoff: { maxDelay: v } }).option).toBe('backoff.maxDelay');
    }
    expect(opt({ visibilityTimeout: 2 * 365 * DAY }).context.max).toBe(365 * DAY);
    expect(opt({ shutdownTimeout: 2 * DAY }).context.max).toBe(DAY);
    const w = new BackgroundWorker({ queue: `h-${randomBytes(4).toString('hex')}`, handler });
    for (const v of [...bad, 2 * DAY]) {
      expect(isValidationError(await rejection(w.stop({ timeout: v })))).toBe(true);
    }
    await w.stop();
  });
});
