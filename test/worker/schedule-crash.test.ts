/**
 * Schedule crash test: 3 scheduler processes (BackgroundWorkers under tsx) share one Redis queue
 * with an `every: 0.5` schedule; one is SIGKILLed twice and restarted. Over at least 20 ticks
 * every tick produces exactly one task: the tick times are consecutive multiples of 500 ms from
 * the schedule's first run (no gap), no tick has two tasks, and the queue holds as many tasks as
 * there are ticks.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import { childWorkers, exited } from './fixture.js';

const { dir, spawn: spawnWorker } = childWorkers('schedule-worker.ts');

const EVERY_MS = 500;

/** Task ids each log shows started, per log. */
function started(files: string[]): string[][] {
  return files.map((f) => {
    try {
      return readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('S '))
        .map((l) => l.slice(2));
    } catch {
      return [];
    }
  });
}

it('fires exactly one task per tick across 3 scheduler processes, one SIGKILLed twice', async () => {
  const name = `sched-crash-${randomBytes(4).toString('hex')}`;
  const prefix = 'azs-test-sched-crash:';
  const queue = new TaskQueue({ name, prefix, redis: servers().redisUrl });
  const logs = ['a0', 'a1', 'a2', 'b', 'c'].map((l) => join(dir, `${l}.log`));
  const distinctTicks = () => new Set(started(logs).flat()).size;
  const waitTicks = async (n: number, ms: number) => {
    const end = Date.now() + ms;
    while (distinctTicks() < n) {
      if (Date.now() > end) throw new Error(`stuck below ${n} ticks (${distinctTicks()})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    // misfireGrace: this test is about exactly-once, not lateness; a loaded host may stall all
    // three processes for longer than one 0.5 s period, which would count as a miss otherwise.
    const info = await queue.schedule('beat', { every: EVERY_MS / 1000, misfireGrace: 30 });
    const first = (info.next as Date).getTime();
    const [a0, b, c] = await Promise.all([
      spawnWorker(name, prefix, logs[0] as string),
      spawnWorker(name, prefix, logs[3] as string),
      spawnWorker(name, prefix, logs[4] as string),
    ]);
    await waitTicks(6, 60_000);
    a0.kill('SIGKILL');
    await exited(a0);
    const a1 = await spawnWorker(name, prefix, logs[1] as string);
    await waitTicks(14, 60_000);
    a1.kill('SIGKILL');
    await exited(a1);
    const a2 = await spawnWorker(name, prefix, logs[2] as string);
    await waitTicks(24, 60_000);
    await queue.unschedule('beat');
    // Ticks committed before the unschedule are still submitted and run; wait for the queue to drain.
    const end = Date.now() + 30_000;
    for (;;) {
      const s = await queue.stats();
      if (s.queued + s.delayed + s.processing === 0) break;
      if (Date.now() > end) throw new Error(`queue did not drain: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1500)); // a round in flight at the unschedule
    for (const child of [a2, b, c]) child.kill('SIGTERM');
    await Promise.all([a2, b, c].map(exited));

    const ids = [...new Set(started(logs).flat())];
    const ticks = ids
      .map((id) => {
        const m = /^schedule:beat:(\d+)$/.exec(id);
        expect(m, id).not.toBeNull();
        return Number(m?.[1]);
      })
      .sort((x, y) => x - y);
    expect(ticks.length).toBeGreaterThanOrEqual(24);
    expect(ticks[0]).toBe(first);
    // Consecutive ticks: no gap, and (ids being per tick) no tick twice.
    ticks.forEach((t, i) => {
      expect(t).toBe(first + i * EVERY_MS);
    });
    // Every task the schedule produced is one of these ticks and completed once.
    const s = await queue.stats();
    expect(s).toMatchObject({ queued: 0, processing: 0, delayed: 0, failed: 0 });
    expect(s.completed).toBe(ticks.length);
    // Starts logged more than once are re-runs of a task in flight in a killed process.
    const runs = started(logs);
    const rerun = ids.filter((id) => runs.flat().filter((x) => x === id).length > 1);
    for (const id of rerun) expect(runs[0]?.includes(id) || runs[1]?.includes(id)).toBe(true);
    expect(rerun.length).toBeLessThanOrEqual(4);
  } finally {
    await queue.close();
  }
}, 180_000);
