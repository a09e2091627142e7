/**
 * A client the user passes in works whichever ioredis major made it: the dependency is ioredis 6,
 * and `ioredis5` (an npm alias of ioredis 5) stands for an app that still has 5. Each client, a
 * standalone and a Cluster one, goes into a cache, a session manager and a task queue, and is
 * left open by their close().
 */
import { randomBytes } from 'node:crypto';
import { Cluster as Cluster6, Redis as Redis6 } from 'ioredis';
import { Cluster as Cluster5, Redis as Redis5 } from 'ioredis5';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

type Nodes = { host: string; port: number }[];
const majors = [
  {
    major: 6,
    standalone: (url: string) => new Redis6(url, { maxRetriesPerRequest: 1 }),
    cluster: (nodes: Nodes) => new Cluster6(nodes, { redisOptions: { maxRetriesPerRequest: 1 } }),
  },
  {
    major: 5,
    standalone: (url: string) => new Redis5(url, { maxRetriesPerRequest: 1 }),
    cluster: (nodes: Nodes) => new Cluster5(nodes, { redisOptions: { maxRetriesPerRequest: 1 } }),
  },
];

describe.each(majors)('a client from ioredis $major', ({ major, standalone, cluster }) => {
  const clients: { quit(): Promise<unknown> }[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });

  it('reports its own major version', async () => {
    const pkg = major === 6 ? 'ioredis/package.json' : 'ioredis5/package.json';
    const { default: json } = await import(pkg, { with: { type: 'json' } });
    expect(Number(String(json.version).split('.')[0])).toBe(major);
  });

  for (const topology of ['standalone', 'cluster'] as const) {
    it(`${topology}: cache, sessions and a queue use it and leave it open`, async () => {
      const s = servers();
      const client = topology === 'standalone' ? standalone(s.redisUrl) : cluster(s.clusterNodes);
      clients.push(client);

      const cache = new DistributedCache({
        redis: client,
        prefix: uniquePrefix('io5'),
        backendTimeout: 10,
      });
      await cache.set('a', 'one', 60);
      await cache.setBatch(
        Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, `v${i}`])),
        60,
      );
      expect(await cache.get('a')).toBe('one');
      expect(await cache.getBatch(['k0', 'k7', 'k19', 'missing'])).toEqual([
        'v0',
        'v7',
        'v19',
        null,
      ]);
      await cache.close();

      const sessions = new DistributedSessionManager({
        redis: client,
        prefix: uniquePrefix('io5'),
      });
      const id = sessions.newSessionId();
      await sessions.appendMessage(id, { role: 'user', content: `from ioredis ${major}` });
      await sessions.appendMessage(id, { role: 'assistant', content: 'ok' });
      const got = await sessions.getSession(id);
      expect(got?.messages?.map((m) => m.content)).toEqual([`from ioredis ${major}`, 'ok']);
      await sessions.close();

      const q = new TaskQueue({
        name: `io${major}-${randomBytes(4).toString('hex')}`,
        redis: client,
        prefix: 'azs-test-io:',
      });
      const w = new BackgroundWorker<{ x: number }, number>({
        queue: q,
        visibilityTimeout: 5,
        handler: async (d) => d.x * 2,
      });
      const taskId = await q.submitTask({ x: 21 });
      await w.start();
      expect(await q.waitForResult(taskId, { timeout: 20 })).toBe(42);
      await w.stop({ timeout: 5 });
      await q.close();

      // Ours to use, not to close.
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    });
  }
});
