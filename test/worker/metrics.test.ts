/** Queue-depth gauges (what an autoscaler scales on) move on their own while metrics are given. */
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/index.js';
import { TaskQueue } from '../../src/worker/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

function gaugeValue(text: string, name: string, queue: string): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && l.includes(`queue="${queue}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe.each(['memory', 'redis'] as const)('worker queue-depth gauges (%s)', (kind) => {
  it('worker_queue_depth and friends follow the queue without a stats() call', async () => {
    const metrics = new Metrics({ prefix: 'azscale_' });
    const name = uniquePrefix('wm').replace(/:$/, '');
    const queue = new TaskQueue({
      name,
      redis: kind === 'redis' ? servers().redisUrl : undefined,
      metrics,
      metricsInterval: 0.1,
    });
    try {
      await queue.submitTasks([{ n: 1 }, { n: 2 }, { n: 3 }]);
      await queue.submitTask({ n: 4 }, { delay: 60 });
      // Wait for one refresh that saw all four submits: a refresh may fall between the two
      // submits (depth 3, delayed 0), so each gauge is read from the same scrape, and the wait
      // is for a condition (generous bound for a loaded machine), not a fixed number of ticks.
      const want = { depth: 3, delayed: 1, dead: 0 };
      let seen: typeof want | undefined;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const text = await metrics.prometheus();
        seen = {
          depth: gaugeValue(text, 'azscale_worker_queue_depth', name) ?? -1,
          delayed: gaugeValue(text, 'azscale_worker_tasks_delayed', name) ?? -1,
          dead: gaugeValue(text, 'azscale_worker_dead_letters', name) ?? -1,
        };
        if (seen.depth === 3 && seen.delayed === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toEqual(want);
    } finally {
      await queue.close();
    }
  });
});

it('metricsInterval must be a non-negative number of seconds', () => {
  expect(() => new TaskQueue({ name: 'x', metricsInterval: -1 })).toThrow(/metricsInterval/);
});
