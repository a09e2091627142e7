/** Worker spans: azscale.worker.submit (producer) and azscale.worker.process (consumer). */
import { describe, expect, it } from 'vitest';
import { disableTracing, setupTracing } from '../../src/observability/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { useInMemoryTracing } from '../harness/tracing.js';

const tracing = useInMemoryTracing();

describe('worker spans', () => {
  it('submit and process are spans carrying the queue and task id', async () => {
    const name = `trace-${Date.now()}`;
    const queue = new TaskQueue({ name });
    const worker = new BackgroundWorker({
      queue,
      numWorkers: 2,
      handler: async (data: { n: number }) => data.n + 1,
    });
    await worker.start();
    try {
      setupTracing({ serviceName: 'svc', tracerProvider: tracing.provider });
      const id = await queue.submitTask({ n: 41 });
      expect(await queue.waitForResult(id, { timeout: 5 })).toBe(42);
      const spans = tracing.exporter.getFinishedSpans();
      const submit = spans.find((s) => s.name === 'azscale.worker.submit');
      const proc = spans.find((s) => s.name === 'azscale.worker.process');
      expect(submit?.attributes['azscale.task_id']).toBe(id);
      expect(submit?.attributes['azscale.queue']).toBe(name);
      expect(proc?.attributes['azscale.task_id']).toBe(id);
      expect(proc?.attributes['azscale.task.attempt']).toBe(1);
    } finally {
      disableTracing();
      await worker.stop({ timeout: 5 });
      await queue.close();
    }
  });
});
