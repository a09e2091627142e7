/** Leases, reclaims, expiry and stats: the {@link QueueBackend} contract, partly on the backend directly. */
import { isNotFoundError, isTimeoutError } from '../core/errors.js';
import type { QueueContext } from './queue-context.js';
import { sleep } from './util.js';

/** @internal Registers the lease, reclaim, expiry and stats cases. */
export function queueLeaseCases({ it, expect, queue, worker }: QueueContext): void {
  it("reclaims a dead consumer's task after visibilityTimeout; the first result sticks", async () => {
    const q = await queue();
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
    const q = await queue();
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
    const q = await queue({ resultTtl: 0.4 });
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
    const q = await queue();
    const id = await q.submitTask('nobody runs me');
    const t0 = Date.now();
    const err = await q.waitForResult(id, { timeout: 0.2 }).catch((e) => e);
    expect(isTimeoutError(err)).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1500);
    await expect(q.waitForResult('unknown', { timeout: 1 })).rejects.toSatisfy(isNotFoundError);
  });

  it('stats report queued, processing and the oldest waiting age', async () => {
    const q = await queue();
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
}
