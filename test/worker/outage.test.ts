/**
 * Redis goes away under a running worker: calls fail with BackendUnavailableError, the worker
 * reports errors and keeps trying, and once Redis is back (empty: no persistence) it recreates its
 * consumer group and scripts and runs new tasks.
 */
import { expect, it } from 'vitest';
import { isBackendUnavailableError } from '../../src/core/errors.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { startRedisServer } from '../harness/env.js';

it('survives a Redis restart', async () => {
  let server = await startRedisServer();
  const port = server.port;
  const queue = new TaskQueue({
    name: 'outage',
    redis: server.url,
    redisOptions: { connectTimeout: 1, commandTimeout: 1 },
  });
  const errors: Error[] = [];
  const worker = new BackgroundWorker<number, number>({
    queue,
    visibilityTimeout: 2,
    handler: (n) => n * 10,
  });
  worker.on('error', (e) => errors.push(e));
  try {
    await worker.start();
    expect(await queue.waitForResult(await queue.submitTask(1), { timeout: 5 })).toBe(10);

    await server.kill('SIGKILL');
    const down = await queue.submitTask(2).catch((e) => e);
    expect(isBackendUnavailableError(down)).toBe(true);

    server = await startRedisServer({ port });
    let id: string | undefined;
    const end = Date.now() + 15_000;
    while (!id && Date.now() < end) {
      id = await queue.submitTask(3).catch(() => undefined);
      if (!id) await new Promise((r) => setTimeout(r, 100));
    }
    expect(id).toBeDefined();
    expect(await queue.waitForResult(id as string, { timeout: 10 })).toBe(30);
    // Whatever the loop reported meanwhile was typed as an outage.
    expect(errors.every(isBackendUnavailableError)).toBe(true);
  } finally {
    await worker.stop({ timeout: 1 });
    await queue.close();
    await server.stop();
  }
}, 60_000);
