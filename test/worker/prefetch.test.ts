/**
 * Prefetching: while tasks are short a worker claims a few beyond its free slots, so a claim's
 * round trip overlaps running. Held tasks must still run at most `numWorkers` at once, once each,
 * be cancellable while held, and go back to the queue when the worker stops.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BackgroundWorker, TaskQueue, type TaskQueueOptions } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';

type Kind = 'memory' | 'redis' | 'cluster';

function redisFor(kind: Kind): TaskQueueOptions['redis'] {
  if (kind === 'memory') return undefined;
  const s = servers();
  return kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
}

async function until(pred: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('condition not met in time');
}

describe.each<Kind>(['memory', 'redis', 'cluster'])('worker prefetch: %s', (kind) => {
  const opened: { close(): Promise<void> }[] = [];
  const workers: BackgroundWorker[] = [];

  function queue(): TaskQueue {
    const q = new TaskQueue({
      name: `wqp-${randomBytes(5).toString('hex')}`,
      redis: redisFor(kind),
      prefix: 'azs-test-wp:',
    });
    opened.push(q);
    return q;
  }

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
    for (const q of opened.splice(0)) await q.close();
  });

  it('runs at most numWorkers at once; a stopped worker gives its held tasks back, each runs once', async () => {
    const q = queue();
    const n = 300;
    const ids = await q.submitTasks(Array.from({ length: n }, (_, i) => i));
    const runs = new Map<number, number>();
    let active = 0;
    let maxActive = 0;
    const handler = async (d: unknown) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.set(d as number, (runs.get(d as number) ?? 0) + 1);
      await new Promise((r) => setImmediate(r));
      active--;
      return d;
    };
    const a = new BackgroundWorker({ queue: q, numWorkers: 1, handler });
    workers.push(a);
    await a.start();
    await until(() => runs.size >= 100);
    await a.stop({ timeout: 5 });
    expect(maxActive).toBe(1);
    const b = new BackgroundWorker({ queue: q, numWorkers: 3, handler });
    workers.push(b);
    await b.start();
    for (const id of ids) await q.waitForResult(id, { timeout: 30 });
    expect(runs.size).toBe(n);
    expect([...runs.values()].every((c) => c === 1)).toBe(true);
    const s = await q.stats();
    expect(s).toMatchObject({ queued: 0, processing: 0, completed: n });
  });

  it('a held (prefetched) task that is cancelled never runs', async () => {
    const q = queue();
    const short = await q.submitTasks(Array.from({ length: 30 }, (_, i) => ({ i })));
    const block = await q.submitTask({ block: true });
    const victim = await q.submitTask({ victim: true });
    const after = await q.submitTasks([{ i: 100 }, { i: 101 }]);
    let release: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    let victimRan = false;
    const w = new BackgroundWorker({
      queue: q,
      numWorkers: 1,
      handler: async (d) => {
        const o = d as { block?: boolean; victim?: boolean };
        if (o.victim) victimRan = true;
        if (o.block) await blocked;
        return null;
      },
    });
    workers.push(w);
    await w.start();
    // While the blocking task runs, the next one is claimed and held by the worker.
    await until(async () => (await q.getTask(block))?.status === 'processing');
    await until(async () => (await q.getTask(victim))?.status === 'processing');
    expect(w.activeCount).toBe(1);
    expect(await q.cancelTask(victim)).toBe(true);
    release();
    for (const id of [...short, block, ...after]) await q.waitForResult(id, { timeout: 30 });
    expect(victimRan).toBe(false);
    expect((await q.getTask(victim))?.status).toBe('cancelled');
    await until(async () => (await q.stats()).processing === 0);
  });
});
