/**
 * Issue 13, defect 9: a graceful stop() never throws away a result whose handler returned.
 * Redis refuses every write (maxmemory 1: OOM) while the worker stops; the result write is
 * retried within the stop timeout, lands once Redis accepts writes again, and no worker runs the
 * task a second time. Private servers (standalone and a one-node Cluster): refusing writes on
 * the shared ones would break other test files.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAzscaleError } from '../../src/core/errors.js';
import { BackgroundWorker, TaskQueue, type TaskQueueOptions } from '../../src/worker/index.js';
import { type ServerHandle, startRedisServer } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error('condition not met in time');
}

/** A one-node Cluster: every slot on one cluster-enabled server. */
async function oneNodeCluster(): Promise<ServerHandle> {
  const s = await startRedisServer({ cluster: true, args: ['--cluster-announce-ip', '127.0.0.1'] });
  const admin = new Redis(s.url);
  try {
    await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await until(async () =>
      String(await admin.call('CLUSTER', 'INFO')).includes('cluster_state:ok'),
    );
  } finally {
    admin.disconnect();
  }
  return s;
}

const kinds = ['redis', 'cluster'] as const;

describe.each(kinds)('stop() keeps finished results while Redis refuses writes (%s)', (kind) => {
  let server: ServerHandle;
  let admin: Redis;

  beforeAll(async () => {
    server = kind === 'redis' ? await startRedisServer() : await oneNodeCluster();
    admin = new Redis(server.url);
  }, 60_000);

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  function redis(): TaskQueueOptions['redis'] {
    return kind === 'redis' ? server.url : { nodes: [{ host: '127.0.0.1', port: server.port }] };
  }

  it('records the result once writes work again and never runs the task twice', async () => {
    const name = `ws-${randomBytes(5).toString('hex')}`;
    const q = new TaskQueue({ name, redis: redis() });
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const errors: Error[] = [];
    const w = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 1,
      handler: async (d: { n: number }) => {
        runs++;
        await gate;
        return { answer: d.n * 2 };
      },
    });
    w.on('error', (e) => errors.push(e));
    const w2 = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 1,
      handler: async () => {
        runs++;
        return { answer: -1 };
      },
    });
    try {
      await w.start();
      const id = await q.submitTask({ n: 21 });
      await until(() => runs === 1);

      await admin.config('SET', 'maxmemory', '1');
      const stopping = w.stop({ timeout: 20 });
      release();
      // The result write fails (OOM) at least once while the worker stops.
      await until(() => errors.length > 0);
      await sleep(500);
      expect((await q.getTask(id))?.status).toBe('processing');
      await admin.config('SET', 'maxmemory', '0');
      await stopping;

      expect(await q.getTask(id)).toMatchObject({ status: 'completed', result: { answer: 42 } });
      // The refused writes reached us as typed errors without the command's arguments.
      for (const e of errors) {
        expect(isAzscaleError(e)).toBe(true);
        expect(
          JSON.stringify({
            m: e.message,
            c: String(e.cause),
            ctx: (e as { context?: unknown }).context,
          }),
        ).not.toContain('answer');
      }
      // Another worker with a 1 s lease finds nothing to reclaim.
      await w2.start();
      await sleep(2500);
      expect(runs).toBe(1);
      expect((await q.stats()).completed).toBe(1);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      release();
      await w.stop({ timeout: 0 }).catch(() => undefined);
      await w2.stop({ timeout: 0 });
      await q.close();
    }
  }, 60_000);

  it('gives up after the stop timeout: the task is released and runs again (documented)', async () => {
    const name = `ws-${randomBytes(5).toString('hex')}`;
    const q = new TaskQueue({ name, redis: redis() });
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const w = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 1,
      handler: async () => {
        runs++;
        await gate;
        return 'first';
      },
    });
    w.on('error', () => undefined);
    const w2 = new BackgroundWorker({
      queue: q,
      visibilityTimeout: 1,
      handler: async () => {
        runs++;
        return 'second';
      },
    });
    try {
      await w.start();
      const id = await q.submitTask({});
      await until(() => runs === 1);
      await admin.config('SET', 'maxmemory', '1');
      const stopping = w.stop({ timeout: 0.5 });
      release();
      await stopping;
      await admin.config('SET', 'maxmemory', '0');
      await w2.start();
      expect(await q.waitForResult(id, { timeout: 30 })).toBe('second');
      expect(runs).toBe(2);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await w.stop({ timeout: 0 }).catch(() => undefined);
      await w2.stop({ timeout: 0 });
      await q.close();
    }
  }, 60_000);
});
