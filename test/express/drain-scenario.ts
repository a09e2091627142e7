/**
 * The SIGTERM-under-load scenario shared by the Express and Fastify tests: a fixture app in a
 * child process answers a stream of requests that each submit a task; mid-stream it gets
 * SIGTERM. Every request the server received is answered, the tasks that were running finish in
 * the drain, and the backlog stays queued in Redis for the next instance.
 */
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { childEnv, servers, uniquePrefix } from '../harness/env.js';

/** Runs the drain scenario against a fixture app. */
export async function sigtermDuringLoad(app: string): Promise<void> {
  const queueName = uniquePrefix('drain').slice(0, -1);
  const child = spawn(process.execPath, ['--import', 'tsx', app, servers().redisUrl, queueName], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`app did not start: ${err}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const taskIds: string[] = [];
  const failures: string[] = [];
  let stopped = false;
  let sent = 0;
  // Eight clients in a loop until the server refuses connections.
  const client = async () => {
    while (!stopped) {
      const n = sent++;
      try {
        const res = await fetch(`${url}/api/task/${n}`, { method: 'POST' });
        const body = (await res.json()) as { taskId?: string };
        if (res.status !== 200 || !body.taskId) failures.push(`status ${res.status}`);
        else taskIds.push(body.taskId);
      } catch (e) {
        // Refused (the listener is closed): the request never reached the app.
        const code = (e as { cause?: { code?: string } }).cause?.code;
        if (code === 'ECONNREFUSED') stopped = true;
        else failures.push(String((e as { cause?: unknown }).cause ?? e));
      }
    }
  };
  const clients = Array.from({ length: 8 }, client);
  // SIGTERM once the app is busy.
  while (taskIds.length < 40) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGTERM');
  const code = await exited;
  stopped = true;
  await Promise.all(clients);

  expect(code, err).toBe(0);
  const counts = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as {
    received: number;
    answered: number;
  };
  // Every request the app received was answered, and the client got every answer.
  expect(counts.answered).toBe(counts.received);
  expect(taskIds.length).toBe(counts.answered);
  // A connection reset is allowed only for a request the app never received.
  expect(failures.filter((f) => f.startsWith('status'))).toEqual([]);
  expect(sent - failures.length - taskIds.length).toBeLessThanOrEqual(8 + 1);

  // Tasks that were running finished in the drain (one attempt, completed); the backlog is
  // still queued in Redis for the next instance, which a new worker here then runs.
  const queue = new TaskQueue({ name: queueName, redis: servers().redisUrl });
  const next = new BackgroundWorker({
    queue,
    numWorkers: 8,
    handler: async (d: { n: string }) => ({ done: d.n }),
  });
  try {
    const infos = await Promise.all(taskIds.map((id) => queue.getTask(id)));
    const statuses = new Set(infos.map((t) => t?.status));
    expect([...statuses].filter((s) => s !== 'completed' && s !== 'queued')).toEqual([]);
    expect(infos.filter((t) => t?.status === 'completed' && t.attempts !== 1)).toEqual([]);
    expect(infos.some((t) => t?.status === 'completed')).toBe(true);
    await next.start();
    const results = await Promise.all(
      taskIds.map((id) => queue.waitForResult(id, { timeout: 60 })),
    );
    expect(results.length).toBe(taskIds.length);
  } finally {
    await next.stop();
    await queue.close();
  }
}
