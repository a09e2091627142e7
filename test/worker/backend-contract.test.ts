/**
 * The QueueBackend contract (azscale/testing's describeQueueBackend) on memory, Redis standalone
 * and Redis Cluster, plus what only the Redis backend shows: streams trimmed after acks, crashed
 * consumers removed, NOSCRIPT recovery; and the queue a worker creates from a name.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRedis } from '../../src/core/connection.js';
import { describeQueueBackend } from '../../src/testing/index.js';
import {
  BackgroundWorker,
  type ClaimedTask,
  MemoryQueueBackend,
  RedisQueueBackend,
} from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import { KINDS, redisFor, sleep, until, workerFixture } from './fixture.js';

const s = servers();
const PREFIX = 'azs-test-worker:';
// A backend does not own its connection (the TaskQueue that builds one closes it): the suites'
// backends share one connection per server, closed after the file.
const standalone = resolveRedis(s.redisUrl)!;
const cluster = resolveRedis({ nodes: s.clusterNodes })!;
afterAll(async () => {
  await standalone.close();
  await cluster.close();
});

describeQueueBackend(
  'memory',
  ({ name, resultTtl }) => new MemoryQueueBackend({ name, resultTtl }),
);
describeQueueBackend(
  'redis standalone',
  ({ name, resultTtl }) => new RedisQueueBackend(standalone, { name, resultTtl, prefix: PREFIX }),
);
describeQueueBackend(
  'redis cluster',
  ({ name, resultTtl }) => new RedisQueueBackend(cluster, { name, resultTtl, prefix: PREFIX }),
);

describe.each(['redis', 'cluster'] as const)('redis queue backend: %s', (kind) => {
  const { queue, worker } = workerFixture(kind);
  const raw = () => (kind === 'redis' ? new Redis(s.redisUrl) : new Cluster(s.clusterNodes));

  it('acknowledged entries leave the streams; finished tasks carry their expiry', async () => {
    const q = queue();
    const n = 300;
    const ids = await q.submitTasks(Array.from({ length: n }, (_, i) => ({ i })));
    const w = worker<{ i: number }, number>(q, { numWorkers: 8, handler: (d) => d.i });
    await w.start();
    await until(async () => (await q.stats()).completed === n);
    const client = raw();
    try {
      const keys = (q.backend as RedisQueueBackend).queueKeys;
      expect(await client.xlen(keys[0] as string)).toBe(0);
      expect(await client.xlen(keys[1] as string)).toBe(0);
      const expiresAt = await client.zscore(keys[10] as string, ids[0] as string);
      expect(Number(expiresAt)).toBeGreaterThan(Date.now());
    } finally {
      client.disconnect();
    }
  });

  it('removes consumers of crashed workers once they hold nothing', async () => {
    const q = queue();
    const b = q.backend as RedisQueueBackend;
    await q.submitTask(1);
    const got = await b.claim({
      consumer: 'ghost',
      count: 1,
      now: Date.now(),
      defaultAttempts: 3,
    });
    await b.complete([{ ...(got.tasks[0] as ClaimedTask), result: '1' }], Date.now());
    const client = raw();
    try {
      const names = async () =>
        ((await client.xinfo('CONSUMERS', b.queueKeys[0] as string, 'workers')) as string[][]).map(
          (c) => c[1],
        );
      expect(await names()).toContain('ghost');
      await sleep(150);
      await b.claim({
        consumer: 'alive',
        count: 1,
        now: Date.now(),
        reclaimIdleMs: 10,
        defaultAttempts: 3,
      });
      expect(await names()).not.toContain('ghost');
    } finally {
      client.disconnect();
    }
  });

  it('recovers when the server forgets its scripts (NOSCRIPT)', async () => {
    const q = queue();
    const w = worker<number, number>(q, { handler: (n) => n + 1 });
    await w.start();
    expect(await q.waitForResult(await q.submitTask(1), { timeout: 5 })).toBe(2);
    if (kind === 'redis') {
      const r = new Redis(s.redisUrl);
      await r.script('FLUSH');
      r.disconnect();
    } else {
      const c = new Cluster(s.clusterNodes);
      await new Promise((resolve) => c.once('ready', resolve));
      await Promise.all(c.nodes('master').map((n) => n.script('FLUSH')));
      c.disconnect();
    }
    expect(await q.waitForResult(await q.submitTask(2), { timeout: 5 })).toBe(3);
    expect((await q.stats()).completed).toBe(2);
  });
});

describe.each(KINDS)('a worker given a queue name: %s', (kind) => {
  const { workers } = workerFixture(kind);

  it("the worker owns a queue given by name and offers the seed's single-process form", async () => {
    const name = `wq-${randomBytes(5).toString('hex')}`;
    const w = new BackgroundWorker<{ query: string }, string>({
      queue: name,
      redis: redisFor(kind),
      numWorkers: 2,
      handler: (d) => d.query.toUpperCase(),
    });
    workers.push(w as BackgroundWorker);
    await w.start();
    const id = await w.submitTask({ query: 'abc' });
    expect(await w.waitForResult(id, { timeout: 5 })).toBe('ABC');
    expect((await w.getTask(id))?.status).toBe('completed');
    await w.stop();
    expect(w.queue.isClosed).toBe(true);
    // Restartable: a fresh queue object is made for the next run.
    await w.start();
    const id2 = await w.submitTask({ query: 'def' });
    expect(await w.waitForResult(id2, { timeout: 5 })).toBe('DEF');
  });
});
