/**
 * Issue 13, lost replies: ioredis resends a command whose reply was lost when it reconnects. A
 * fault proxy forwards the command, drops its reply and cuts the connection; the resent submit,
 * result write and claim must each take effect exactly once (one stream entry, one run, one
 * completion counted), on standalone Redis and on Cluster.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { BackgroundWorker, type RedisQueueBackend, TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import {
  type ProxiedCommand,
  startClusterFaultProxy,
  startFaultProxy,
} from '../harness/fault-proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
interface Faults {
  client: Redis | Cluster;
  direct: Redis | Cluster;
  dropNextReply(match: (cmd: ProxiedCommand) => boolean): Promise<ProxiedCommand | undefined>;
  dropped(): number;
  close(): Promise<void>;
}

async function faults(kind: 'redis' | 'cluster'): Promise<Faults> {
  const s = servers();
  if (kind === 'redis') {
    const u = new URL(s.redisUrl);
    const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
    const client = new Redis(proxy.url);
    const direct = new Redis(s.redisUrl);
    return {
      client,
      direct,
      dropNextReply: (m) => proxy.dropNextReply(m),
      dropped: () => proxy.dropped,
      close: async () => {
        client.disconnect();
        direct.disconnect();
        await proxy.close();
      },
    };
  }
  const proxy = await startClusterFaultProxy(s.clusterNodes);
  const client = new Cluster(proxy.startupNodes, { natMap: proxy.natMap, retryDelayOnMoved: 50 });
  const direct = new Cluster(s.clusterNodes);
  return {
    client,
    direct,
    dropNextReply: (m) => proxy.dropNextReply(m),
    dropped: () => proxy.proxies.reduce((n, p) => n + p.dropped, 0),
    close: async () => {
      client.disconnect();
      direct.disconnect();
      await proxy.close();
    },
  };
}

/** A script call (EVALSHA or its EVAL fallback) one of whose arguments contains `marker`. */
function scriptWith(marker: string): (cmd: ProxiedCommand) => boolean {
  return (cmd) =>
    (cmd.name === 'EVALSHA' || cmd.name === 'EVAL') &&
    cmd.args.some((a) => a.toString().includes(marker));
}

describe.each(['redis', 'cluster'] as const)('lost replies apply once (%s)', (kind) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ f: Faults; q: TaskQueue }> {
    const f = await faults(kind);
    const q = new TaskQueue({ name: `wl-${randomBytes(5).toString('hex')}`, redis: f.client });
    cleanups.push(() => f.close());
    cleanups.push(() => q.close());
    // Warm the script caches so the faulted call is the EVALSHA itself.
    await q.submitTask({ warm: true }, { taskId: 'warm' });
    await q.cancelTask('warm');
    return { f, q };
  }

  it('a submit whose reply is lost is resent and adds one task, run once', async () => {
    const { f, q } = await setup();
    const marker = `submit-${randomBytes(4).toString('hex')}`;
    const drop = f.dropNextReply(scriptWith(marker));
    const id = await q.submitTask({ marker });
    expect((await drop)?.name).toBe('EVALSHA');
    expect(f.dropped()).toBe(1);
    const keys = (q.backend as RedisQueueBackend).queueKeys;
    // One stream entry (the cancelled warm-up's was deleted), one waiting task.
    expect(await f.direct.xlen(keys[0] as string)).toBe(1);
    expect((await q.stats()).queued).toBe(1);
    // The bulk path too: 3 tasks in one script call, reply lost, three tasks once each.
    const bulkMarker = `bulk-${randomBytes(4).toString('hex')}`;
    const dropBulk = f.dropNextReply(scriptWith(bulkMarker));
    const ids = await q.submitTasks([{ bulkMarker }, { bulkMarker }, { bulkMarker }]);
    await dropBulk;
    expect(await f.direct.xlen(keys[0] as string)).toBe(4);
    const runs = new Map<string, number>();
    const w = new BackgroundWorker({
      queue: q,
      handler: async (_d, ctx) => {
        runs.set(ctx.taskId, (runs.get(ctx.taskId) ?? 0) + 1);
        return 'ok';
      },
    });
    cleanups.push(() => w.stop({ timeout: 0 }));
    await w.start();
    for (const t of [id, ...ids]) expect(await q.waitForResult(t, { timeout: 20 })).toBe('ok');
    await sleep(300);
    expect([...runs.values()]).toEqual([1, 1, 1, 1]);
    expect((await q.stats()).completed).toBe(4);
  }, 60_000);

  it('a result write whose reply is lost is resent and counted once', async () => {
    const { f, q } = await setup();
    const marker = `result-${randomBytes(4).toString('hex')}`;
    let runs = 0;
    const w = new BackgroundWorker({
      queue: q,
      numWorkers: 1,
      handler: async () => {
        runs++;
        return { marker };
      },
    });
    cleanups.push(() => w.stop({ timeout: 0 }));
    const drop = f.dropNextReply(scriptWith(marker));
    const id = await q.submitTask({});
    await w.start();
    expect(await q.waitForResult(id, { timeout: 20 })).toEqual({ marker });
    expect(await drop).toBeDefined();
    expect(f.dropped()).toBe(1);
    await sleep(300);
    expect(runs).toBe(1);
    expect((await q.stats()).completed).toBe(1);
    expect((await q.stats()).processing).toBe(0);
  }, 60_000);

  it('a claim whose reply is lost hands its task out once (recovered by the lease)', async () => {
    const { f, q } = await setup();
    let runs = 0;
    const w = new BackgroundWorker({
      queue: q,
      numWorkers: 1,
      visibilityTimeout: 1,
      handler: async () => {
        runs++;
        return 'done';
      },
    });
    w.on('error', () => undefined);
    cleanups.push(() => w.stop({ timeout: 0 }));
    const id = await q.submitTask({});
    const drop = f.dropNextReply(scriptWith(w.consumer));
    await w.start();
    await drop;
    expect(await q.waitForResult(id, { timeout: 20 })).toBe('done');
    await sleep(300);
    expect(runs).toBe(1);
    expect((await q.stats()).completed).toBe(1);
  }, 60_000);
});
