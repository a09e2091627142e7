/**
 * `stats().waitingChildren` (flow parents waiting for their children) and the `events.maxLen`
 * queue option, on memory, Redis and Redis Cluster. Every test uses its own queue name.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  BackgroundWorker,
  type QueueCompletedEvent,
  TaskQueue,
  type TaskQueueOptions,
  UnrecoverableError,
} from '../../src/worker/index.js';
import { servers } from '../harness/env.js';

type Kind = 'memory' | 'redis' | 'cluster';

function redisFor(kind: Kind): TaskQueueOptions['redis'] {
  if (kind === 'memory') return undefined;
  const s = servers();
  return kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
}

async function until(pred: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not met in time');
}

describe.each<Kind>(['memory', 'redis', 'cluster'])('stats and events options: %s', (kind) => {
  const opened: { close(): Promise<void> }[] = [];
  const workers: BackgroundWorker[] = [];

  function queue(extra: Partial<TaskQueueOptions> = {}): TaskQueue {
    const q = new TaskQueue({
      name: `wqs-${randomBytes(5).toString('hex')}`,
      redis: redisFor(kind),
      prefix: 'azs-test-ws:',
      ...extra,
    });
    opened.push(q);
    return q;
  }

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
    for (const q of opened.splice(0)) await q.close();
  });

  it('counts flow parents waiting for their children until they move on', async () => {
    const q = queue();
    const before = await q.stats();
    expect(before.waitingChildren).toBe(0);
    // root waits for mid and leaf2; mid waits for leaf1: two parents wait.
    const tree = await q.submitFlow({
      name: 'root',
      data: {},
      children: [
        { name: 'mid', data: {}, children: [{ name: 'leaf', data: 1 }] },
        { name: 'leaf', data: 2 },
      ],
    });
    const s1 = await q.stats();
    expect(s1.waitingChildren).toBe(2);
    expect(s1.queued).toBe(2);
    const listed = await q.listTasks({ status: 'waiting-children' });
    expect(listed.map((t) => t.id).sort()).toEqual([tree.id, tree.children[0]?.id].sort());

    const w = new BackgroundWorker({
      queue: q,
      numWorkers: 2,
      handlers: { root: async () => 'r', mid: async () => 'm', leaf: async (d) => d },
    });
    workers.push(w);
    await w.start();
    await q.waitForResult(tree.id, { timeout: 30 });
    const s2 = await q.stats();
    expect(s2.waitingChildren).toBe(0);
    expect(await q.listTasks({ status: 'waiting-children' })).toEqual([]);
  });

  it('a parent failed by its child or cancelled stops counting', async () => {
    const q = queue();
    const failing = await q.submitFlow({
      name: 'root',
      data: {},
      children: [{ name: 'bad', data: {} }],
    });
    const cancelled = await q.submitFlow({
      name: 'root',
      data: {},
      children: [{ name: 'slow', data: {}, delay: 3600 }],
    });
    expect((await q.stats()).waitingChildren).toBe(2);
    expect(await q.cancelTask(cancelled.id)).toBe(true);
    expect((await q.stats()).waitingChildren).toBe(1);
    const w = new BackgroundWorker({
      queue: q,
      handlers: {
        root: async () => 'never',
        bad: async () => {
          throw new UnrecoverableError('no');
        },
      },
    });
    workers.push(w);
    await w.start();
    await until(async () => (await q.getTask(failing.id))?.status === 'failed');
    expect((await q.stats()).waitingChildren).toBe(0);
  });

  it('validates events.maxLen, naming the option', () => {
    for (const bad of [0, 99, 1.5, Number.NaN, '100', 1e9, null]) {
      let err: unknown;
      try {
        queue({ events: { maxLen: bad as number } });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), String(bad)).toBe(true);
      expect((err as { option?: string }).option).toBe('events.maxLen');
    }
    let err: unknown;
    try {
      queue({ events: 5 as unknown as { maxLen: number } });
    } catch (e) {
      err = e;
    }
    expect((err as { option?: string }).option).toBe('events');
  });

  it('keeps about events.maxLen events: a replay from the start sees the newest only', async () => {
    const q = queue({ events: { maxLen: 100 } });
    const n = 600;
    await q.submitTasks(Array.from({ length: n }, (_, i) => i));
    const w = new BackgroundWorker({ queue: q, numWorkers: 20, handler: async (d) => d });
    workers.push(w);
    let done = 0;
    w.on('completed', () => {
      done++;
    });
    await w.start();
    await until(() => done === n);
    const seen: QueueCompletedEvent[] = [];
    const off = q.events.on('completed', (e) => seen.push(e), { from: '0' });
    // The replay ends with the last task's event; the events before the newest ~100 are gone.
    await until(() => seen.some((e) => e.result === n - 1) || seen.length >= n);
    off();
    expect(seen.length).toBeGreaterThanOrEqual(100);
    expect(seen.length).toBeLessThan(n);
  });
});
