/** Timeouts, cancels and graceful stops: the {@link QueueBackend} contract through TaskQueue and BackgroundWorker. */
import {
  UnrecoverableError,
  isCancelledError,
  isNotFoundError,
  isTaskFailedError,
  isTimeoutError,
} from '../core/errors.js';
import type { QueueContext } from './queue-context.js';
import { sleep, until } from './util.js';

/** @internal Registers the timeout, cancel and stop cases. */
export function queueControlCases({ it, expect, queue, handle, worker }: QueueContext): void {
  it('skips retries on UnrecoverableError', async () => {
    const q = await queue();
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
    const q = await queue();
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
    const q = await queue();
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
    const q = await queue();
    const other = await handle(q);
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
    const q = await queue();
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
}
