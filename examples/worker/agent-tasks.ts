/**
 * The seed's async agent endpoint on azscale/worker: POST /api/agent/async submits a task and
 * returns its id, GET /api/task/:id reports its status and result, a worker pool runs the tasks.
 * Run with REDIS_URL set to share tasks between processes; without it everything is in memory.
 *
 *   node --import tsx examples/worker/agent-tasks.ts
 */
import { createServer } from 'node:http';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';

const queue = new TaskQueue({ name: 'agent-tasks', redis: process.env.REDIS_URL });

const worker = new BackgroundWorker<{ query: string }, { answer: string }>({
  queue,
  numWorkers: 4,
  timeout: 60,
  handleSignals: true,
  handler: async ({ query }, ctx) => {
    await ctx.progress(10);
    // Stand-in for the agent call; pass ctx.signal to anything that accepts one.
    await new Promise((r) => setTimeout(r, 200));
    return { answer: `echo: ${query}` };
  },
});
await worker.start();

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const send = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'POST' && url.pathname === '/api/agent/async') {
    const id = await queue.submitTask({ query: url.searchParams.get('task') ?? '' });
    return send(202, { task_id: id, status: 'processing' });
  }
  const m = /^\/api\/task\/([^/]+)$/.exec(url.pathname);
  if (req.method === 'GET' && m) {
    const task = await queue.getTask(decodeURIComponent(m[1] ?? ''));
    return task ? send(200, task) : send(404, { error: 'unknown task' });
  }
  send(404, { error: 'not found' });
});
server.listen(Number(process.env.PORT ?? 8080));
process.once('SIGTERM', () => server.close());
