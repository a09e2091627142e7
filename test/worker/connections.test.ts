/**
 * Issue 13, connections: a worker and its queue hold a bounded number of Redis connections (the
 * queue's and the idle waiter's) before, during and after an outage with traffic, and a worker
 * that starts and stops on a shared queue leaves no connection behind. Counted at a fault proxy
 * in front of real Redis (connections open through it) and with CLIENT LIST on the server.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { isBackendUnavailableError } from '../../src/core/errors.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import { startFaultProxy } from '../harness/fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function named(admin: Redis, name: string): Promise<number> {
  const list = String(await admin.call('CLIENT', 'LIST'));
  return list.split('\n').filter((l) => l.includes(` name=${name} `)).length;
}

// Three since issue 17: waitForResult listens to the queue's events on a reader connection of
// its own (kept open a few seconds after the last wait).
it('one worker holds at most three connections during and after a 12 s outage with traffic', async () => {
  const u = new URL(servers().redisUrl);
  const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
  const admin = new Redis(servers().redisUrl);
  const connectionName = `azs-wc-${randomBytes(4).toString('hex')}`;
  const queue = new TaskQueue({
    name: `wc-${randomBytes(5).toString('hex')}`,
    redis: proxy.url,
    redisOptions: { connectTimeout: 1, commandTimeout: 1, connectionName },
  });
  const worker = new BackgroundWorker<number, number>({
    queue,
    numWorkers: 4,
    visibilityTimeout: 2,
    handler: (n) => n * 2,
  });
  const errors: Error[] = [];
  worker.on('error', (e) => errors.push(e));
  const peak = { proxy: 0, server: 0 };
  const sample = async () => {
    peak.proxy = Math.max(peak.proxy, proxy.connections);
    peak.server = Math.max(peak.server, await named(admin, connectionName));
  };
  try {
    await worker.start();
    expect(await queue.waitForResult(await queue.submitTask(1), { timeout: 10 })).toBe(2);
    await sleep(300);
    await sample();
    expect(peak.server).toBeLessThanOrEqual(3);

    proxy.setDown(true, 'hang');
    const end = Date.now() + 12_000;
    while (Date.now() < end) {
      // Traffic during the outage: submits fail typed, the worker keeps trying.
      const e = await queue.submitTask(5).catch((err) => err);
      expect(isBackendUnavailableError(e)).toBe(true);
      await sample();
      await sleep(250);
    }
    proxy.setDown(false);

    let id: string | undefined;
    const back = Date.now() + 20_000;
    while (!id && Date.now() < back) {
      id = await queue.submitTask(21).catch(() => undefined);
      if (!id) await sleep(100);
    }
    expect(await queue.waitForResult(id as string, { timeout: 20 })).toBe(42);
    for (let i = 0; i < 10; i++) {
      await sample();
      await sleep(100);
    }
    // Held sockets during a hang count at the proxy; a leak would show as many more.
    expect(peak.proxy).toBeLessThanOrEqual(5);
    expect(peak.server).toBeLessThanOrEqual(4);
    expect(await named(admin, connectionName)).toBeLessThanOrEqual(3);
    expect(errors.every(isBackendUnavailableError)).toBe(true);

    // Workers that come and go on the shared queue give their waiter connection back.
    for (let i = 0; i < 5; i++) {
      const w = new BackgroundWorker({ queue, handler: () => 1 });
      await w.start();
      await queue.waitForResult(await queue.submitTask(i), { timeout: 10 });
      await w.stop({ timeout: 1 });
    }
    await sleep(300);
    expect(await named(admin, connectionName)).toBeLessThanOrEqual(3);
  } finally {
    await worker.stop({ timeout: 1 });
    await queue.close();
    admin.disconnect();
    await proxy.close();
  }
}, 90_000);
