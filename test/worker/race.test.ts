/**
 * Status race: many pollers read getTask at a high rate while workers complete tasks; no reader
 * may ever see `completed` without the task's result (status and result are one atomic write).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BackgroundWorker, type TaskInfo, TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';

describe.each(['memory', 'redis', 'cluster'] as const)('status race: %s', (kind) => {
  it('never shows completed without its result', async () => {
    const s = servers();
    const redis =
      kind === 'memory' ? undefined : kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
    const queue = new TaskQueue({
      name: `race-${randomBytes(4).toString('hex')}`,
      prefix: 'azs-test-race:',
      redis,
    });
    const N = 1500;
    const ids = await queue.submitTasks(Array.from({ length: N }, (_, i) => ({ i })));
    const index = new Map(ids.map((id, i) => [id, i]));
    const worker = new BackgroundWorker<{ i: number }, { double: number }>({
      queue,
      numWorkers: 20,
      handler: async (d) => {
        await new Promise((r) => setImmediate(r));
        return { double: d.i * 2 };
      },
    });
    const seen = { completed: 0, other: 0, reads: 0 };
    const bad: TaskInfo[] = [];
    let stop = false;
    const poller = async (lane: number) => {
      let k = lane;
      while (!stop && seen.reads < 200_000) {
        // Walk the ids in step with the workers so reads hit tasks as they finish.
        const done = seen.completed;
        const id = ids[Math.min(N - 1, (done + k * 7) % N)] as string;
        k++;
        const t = await queue.getTask<{ double: number }>(id);
        seen.reads++;
        // Memory reads resolve without I/O: yield so the workers get their turns.
        if (kind === 'memory') await new Promise((r) => setImmediate(r));
        if (!t) continue;
        if (t.status === 'completed') {
          seen.completed++;
          if (t.result === undefined || t.result.double !== (index.get(id) ?? -1) * 2) bad.push(t);
        } else seen.other++;
      }
    };
    await worker.start();
    const pollers = Array.from({ length: 8 }, (_, i) => poller(i));
    const deadline = Date.now() + 30_000;
    while ((await queue.stats()).completed < N && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    stop = true;
    await Promise.all(pollers);
    await worker.stop();
    try {
      expect(bad).toEqual([]);
      expect((await queue.stats()).completed).toBe(N);
      // The readers really raced: they saw both unfinished and finished tasks.
      expect(seen.other).toBeGreaterThan(0);
      expect(seen.completed).toBeGreaterThan(0);
    } finally {
      await queue.close();
    }
  }, 60_000);
});
