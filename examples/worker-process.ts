/**
 * A worker process: the seed's BackgroundWorker on Redis Streams. Run as many as you like on
 * as many machines as you like; they share the queue, a crashed one's tasks are reclaimed, and
 * SIGTERM lets running tasks finish.
 *
 *   node --import tsx examples/worker-process.ts           # embedded: submits and works in one process
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/worker-process.ts
 *   REDIS_URL=... ROLE=worker node --import tsx examples/worker-process.ts   # a worker only (Ctrl-C stops it)
 *
 * In your project: import { BackgroundWorker, TaskQueue } from 'azscale/worker'.
 */
import { BackgroundWorker, TaskQueue, UnrecoverableError } from '../src/index.js';

interface Job {
  query: string;
}

const redis = process.env.REDIS_URL;
const queue = new TaskQueue({
  name: process.env.QUEUE ?? 'example-agent-tasks',
  ...(redis ? { redis } : {}),
});

const worker = new BackgroundWorker<Job, { answer: string }>({
  queue,
  numWorkers: 4, // the seed's num_workers
  attempts: 3,
  backoff: { type: 'exponential', delay: 1, jitter: true },
  timeout: 60, // seconds per attempt; aborts ctx.signal
  handleSignals: process.env.ROLE === 'worker', // SIGTERM: stop taking tasks, finish running ones
  async handler(job, ctx) {
    if (job.query.length === 0) throw new UnrecoverableError('empty query'); // no retries
    await ctx.progress(50);
    await new Promise((r) => setTimeout(r, 20));
    return { answer: `result for ${job.query} (attempt ${ctx.attempt})` };
  },
});
worker.on('failed', (e) => console.log(`task ${e.taskId} failed: ${e.error.message}`));
await worker.start();

if (process.env.ROLE === 'worker') {
  console.log('worker running; Ctrl-C to stop');
} else {
  // The seed's POST /api/agent/async + GET /api/task/{id}, without the HTTP.
  const ids = await queue.submitTasks(
    Array.from({ length: 10 }, (_, i) => ({ query: `question ${i}` })),
  );
  const results = await Promise.all(
    ids.map((id) => queue.waitForResult<{ answer: string }>(id, { timeout: 30 })),
  );
  const info = await queue.getTask(ids[0]!);
  console.log(`${results.length} tasks completed; first: ${info?.status} -> ${results[0]?.answer}`);
  console.log('stats:', await queue.stats());
  await worker.stop({ timeout: 10 });
  await queue.close();
}
