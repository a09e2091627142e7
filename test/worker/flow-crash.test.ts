/**
 * Issue 17 crash test over flows: a flow of 1 parent + 20 children runs on two worker
 * processes; one is SIGKILLed twice mid-flow (and restarted). No child is lost (every child
 * completed, the parent saw all 20 results), the parent never started before the last child
 * ended, and it ran exactly once.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import { childWorkers, exited, logLines as lines } from './fixture.js';

const { dir, spawn: spawnWorker } = childWorkers('flow-worker.ts');

it('a flow survives two SIGKILLs of a worker: no child lost, the parent after all, once', async () => {
  const name = `fcrash-${randomBytes(4).toString('hex')}`;
  const prefix = 'azs-test-fcrash:';
  const queue = new TaskQueue({ name, prefix, redis: servers().redisUrl });
  const logs = [join(dir, 'a0.log'), join(dir, 'a1.log'), join(dir, 'a2.log'), join(dir, 'b.log')];
  const ended = () => lines(logs).filter((l) => l[0] === 'E').length;
  const waitEnded = async (n: number) => {
    const end = Date.now() + 30_000;
    while (ended() < n) {
      if (Date.now() > end) throw new Error(`stuck below ${n} children ended (${ended()})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  try {
    const tree = await queue.submitFlow({
      data: { tag: 'parent' },
      children: Array.from({ length: 20 }, (_, i) => ({ data: { tag: 'child', i } })),
    });
    const [a0, b] = await Promise.all([
      spawnWorker(name, prefix, logs[0] as string),
      spawnWorker(name, prefix, logs[3] as string),
    ]);
    await waitEnded(2);
    a0.kill('SIGKILL');
    await exited(a0);
    const a1 = await spawnWorker(name, prefix, logs[1] as string);
    await waitEnded(9);
    a1.kill('SIGKILL');
    await exited(a1);
    const a2 = await spawnWorker(name, prefix, logs[2] as string);
    const result = await queue.waitForResult<{ n: number; sum: number }>(tree.id, { timeout: 60 });
    // Every child's result reached the parent: 2 * (0 + 1 + ... + 19).
    expect(result).toEqual({ n: 20, sum: 380 });
    for (const c of tree.children) {
      expect((await queue.getTask(c.id))?.status).toBe('completed');
    }
    const all = lines(logs);
    const parentStarts = all.filter((l) => l[0] === 'S' && l[2] === 'parent');
    expect(parentStarts).toHaveLength(1);
    const lastChildEnd = Math.max(...all.filter((l) => l[0] === 'E').map((l) => Number(l[3])));
    expect(Number(parentStarts[0]?.[3])).toBeGreaterThanOrEqual(lastChildEnd);
    // The kills really hit running children (some started more than once), and none was lost.
    const childStarts = all.filter((l) => l[0] === 'S' && l[2] === 'child');
    expect(new Set(childStarts.map((l) => l[1])).size).toBe(20);
    a2.kill('SIGTERM');
    b.kill('SIGTERM');
    await Promise.all([exited(a2), exited(b)]);
  } finally {
    await queue.close();
  }
}, 120_000);
