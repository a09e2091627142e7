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
      let depth: number | undefined;
      for (let i = 0; i < 50 && depth !== 3; i++) {
        await new Promise((r) => setTimeout(r, 50));
        depth = gaugeValue(await metrics.prometheus(), 'azscale_worker_queue_depth', name);
      }
      expect(depth).toBe(3);
      const text = await metrics.prometheus();
      expect(gaugeValue(text, 'azscale_worker_tasks_delayed', name)).toBe(1);
      expect(gaugeValue(text, 'azscale_worker_dead_letters', name)).toBe(0);
    } finally {
      await queue.close();
    }
  });
});

it('metricsInterval must be a non-negative number of seconds', () => {
  expect(() => new TaskQueue({ name: 'x', metricsInterval: -1 })).toThrow(/metricsInterval/);
});
