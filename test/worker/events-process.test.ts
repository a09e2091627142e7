/**
 * Issue 17: queue events reach another PROCESS (a child started with tsx listens and reports
 * over IPC), a listener resumes from a position after its process died, and a listener whose
 * connection is cut resumes on its own without losing or repeating an event. Real Redis.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, it } from 'vitest';
import { BackgroundWorker, type QueueCompletedEvent, TaskQueue } from '../../src/worker/index.js';
import { childEnv, servers } from '../harness/env.js';
import { startFaultProxy } from '../harness/fault-proxy.js';

const script = fileURLToPath(new URL('./fixtures/events-listener.ts', import.meta.url));
const children = new Set<ChildProcess>();
const closers: (() => Promise<void>)[] = [];
const prefix = 'azs-test-wev:';

interface Report {
  event: string;
  taskId?: string;
  result?: unknown;
  progress?: number;
  position?: string;
}

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return;
    await sleep(10);
  }
  throw new Error('condition not met in time');
}

function listen(name: string, from?: string): Promise<{ child: ChildProcess; seen: Report[] }> {
  const child = fork(script, from ? [name, prefix, from] : [name, prefix], {
    env: childEnv(),
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  const seen: Report[] = [];
  return new Promise((resolve, reject) => {
    child.on('message', (m: Report) => {
      if (m.event === 'ready') resolve({ child, seen });
      else seen.push(m);
    });
    child.once('exit', (code) => reject(new Error(`listener exited early (${code})`)));
  });
}

function setup(name: string): TaskQueue {
  const q = new TaskQueue({ name, prefix, redis: servers().redisUrl });
  const w = new BackgroundWorker<{ n: number; steps?: number }, number>({
    queue: q,
    handler: async (d, ctx) => {
      for (let i = 1; i <= (d.steps ?? 0); i++) await ctx.progress(i * 10);
      return d.n * 3;
    },
  });
  closers.push(async () => {
    await w.stop({ timeout: 1 });
    await q.close();
  });
  void w.start();
  return q;
}

it('events reach a second process, with results and progress', async () => {
  const name = `wev-${randomBytes(4).toString('hex')}`;
  const { child, seen } = await listen(name);
  const q = setup(name);
  const a = await q.submitTask({ n: 1, steps: 3 });
  const b = await q.submitTask({ n: 2 });
  await q.waitForResult(b, { timeout: 10 });
  await q.waitForResult(a, { timeout: 10 });
  await until(() => seen.filter((s) => s.event === 'completed').length === 2);
  expect(
    seen.filter((s) => s.taskId === a && s.event === 'progress').map((s) => s.progress),
  ).toEqual([10, 20, 30]);
  const done = seen.filter((s) => s.event === 'completed');
  expect(Object.fromEntries(done.map((s) => [s.taskId, s.result]))).toEqual({ [a]: 3, [b]: 6 });
  child.disconnect();
}, 60_000);

it('a new process resumes from the last position the killed one reported', async () => {
  const name = `wev-${randomBytes(4).toString('hex')}`;
  const first = await listen(name);
  const q = setup(name);
  const before = [];
  for (let i = 0; i < 3; i++) before.push(await q.submitTask({ n: i }));
  for (const id of before) await q.waitForResult(id, { timeout: 10 });
  await until(() => first.seen.length === 3);
  const last = first.seen[2]?.position as string;
  first.child.kill('SIGKILL');
  // Missed while no listener runs.
  const missed = [];
  for (let i = 10; i < 14; i++) missed.push(await q.submitTask({ n: i }));
  for (const id of missed) await q.waitForResult(id, { timeout: 10 });
  const second = await listen(name, last);
  const live = await q.submitTask({ n: 100 });
  await until(() => second.seen.some((s) => s.taskId === live));
  await sleep(200);
  expect(second.seen.map((s) => s.taskId)).toEqual([...missed, live]);
  expect(second.seen.map((s) => s.result)).toEqual([30, 33, 36, 39, 300]);
  second.child.disconnect();
}, 60_000);

it('a listener whose connection is cut resumes from where it was: nothing lost, nothing twice', async () => {
  const u = new URL(servers().redisUrl);
  const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
  closers.push(() => proxy.close());
  const name = `wev-${randomBytes(4).toString('hex')}`;
  const listener = new TaskQueue({ name, prefix, redis: proxy.url });
  closers.push(() => listener.close());
  const seen: QueueCompletedEvent[] = [];
  const errors: Error[] = [];
  listener.events.on('completed', (e: QueueCompletedEvent) => seen.push(e));
  listener.events.on('error', (e) => errors.push(e));
  await listener.events.ready();
  const q = setup(name);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await q.submitTask({ n: i }));
  await until(() => seen.length === 5);
  // Down (refusing) while tasks complete, then back.
  proxy.setDown(true);
  proxy.cutAll();
  for (let i = 5; i < 15; i++) ids.push(await q.submitTask({ n: i }));
  for (const id of ids) await q.waitForResult(id, { timeout: 10 });
  await sleep(300);
  proxy.setDown(false);
  await until(() => seen.length >= 15, 30_000);
  await sleep(300);
  expect(seen.map((e) => e.taskId)).toEqual(ids);
  expect(seen.map((e) => e.result)).toEqual(ids.map((_, i) => i * 3));
}, 60_000);
