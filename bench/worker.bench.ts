/**
 * Worker: end-to-end throughput (submit 20,000 no-op tasks in bulk, then process them all) of
 * TaskQueue + BackgroundWorker vs BullMQ's Queue.addBulk + Worker, at worker concurrency 1, 10
 * and 50 on the same Redis, plus single-submit latency vs queue.add. Each "op" of a throughput
 * row is a whole run; the table's ops/s is scaled to tasks/s.
 */
import { randomBytes } from 'node:crypto';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { BackgroundWorker, TaskQueue } from '../src/worker/index.js';
import { type BenchRow, type BenchSuite, type Measurement, compare } from './lib.js';

const TASKS = Number(process.env.AZS_BENCH_WORKER_TASKS ?? 20_000);

function uid(): string {
  return randomBytes(5).toString('hex');
}

/** Ours: bulk submit, then a worker of `concurrency` until every task completed. */
async function oursRun(redisUrl: string, concurrency: number, n: number): Promise<void> {
  const name = `bench-${uid()}`;
  const queue = new TaskQueue({ name, redis: redisUrl, prefix: 'azsbench:' });
  const payload = Array.from({ length: n }, (_, i) => ({ i }));
  await queue.submitTasks(payload);
  const worker = new BackgroundWorker({
    queue,
    numWorkers: concurrency,
    handler: async () => null,
  });
  let done = 0;
  const finished = new Promise<void>((resolve) => {
    worker.on('completed', () => {
      if (++done === n) resolve();
    });
  });
  await worker.start();
  await finished;
  await worker.stop();
  await queue.close();
  // Deleting the keys is not part of the timed work.
  garbage.push(() => cleanup(redisUrl, `azsbench:{${name}}*`));
}

/** Clean-ups deferred until a comparison is over, for both sides alike. */
const garbage: (() => Promise<unknown>)[] = [];
async function collect(): Promise<void> {
  for (const g of garbage.splice(0)) await g();
}

/** BullMQ: addBulk, then a Worker of `concurrency` until every job completed. */
async function bullRun(redisUrl: string, concurrency: number, n: number): Promise<void> {
  const name = `bench-${uid()}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new BullQueue(name, { connection, prefix: 'bullbench' });
  const jobs = Array.from({ length: n }, (_, i) => ({ name: 'task', data: { i } }));
  for (let i = 0; i < jobs.length; i += 5000) await queue.addBulk(jobs.slice(i, i + 5000));
  let done = 0;
  let resolveDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const worker = new BullWorker(name, async () => null, {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    concurrency,
    prefix: 'bullbench',
  });
  worker.on('completed', () => {
    if (++done === n) resolveDone();
  });
  await finished;
  await worker.close();
  garbage.push(async () => {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    connection.disconnect();
  });
}

async function cleanup(redisUrl: string, pattern: string): Promise<void> {
  const r = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.unlink(...keys);
    } while (cursor !== '0');
    // Task hashes: tagged keys too.
  } finally {
    r.disconnect();
  }
}

function perTask(m: Measurement, n: number): Measurement {
  return {
    ...m,
    opsPerSec: m.opsPerSec * n,
    meanMs: m.meanMs / n,
    p50Ms: m.p50Ms / n,
    p99Ms: m.p99Ms / n,
  };
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  // Warm both sides (JIT, script caches) outside the timed rounds.
  await oursRun(ctx.redisUrl, 10, 2000);
  await bullRun(ctx.redisUrl, 10, 2000);
  await collect();
  for (const concurrency of [1, 10, 50]) {
    const row = await compare({
      group: 'worker',
      case: `${TASKS} no-op tasks, bulk submit + process, concurrency ${concurrency} (tasks/s)`,
      ours: () => oursRun(ctx.redisUrl, concurrency, TASKS),
      theirsLabel: 'bullmq addBulk + Worker',
      theirs: () => bullRun(ctx.redisUrl, concurrency, TASKS),
      iterations: 1,
      warmup: 0,
      rounds: 2,
      ...(concurrency === 1 ? { maxRatio: 1 } : { minSpeedup: 2 }),
    });
    await collect();
    row.ours = perTask(row.ours, TASKS);
    row.theirs = perTask(row.theirs, TASKS);
    rows.push(row);
  }

  const name = `bench-${uid()}`;
  const queue = new TaskQueue({ name, redis: ctx.redisUrl, prefix: 'azsbench:' });
  const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const bull = new BullQueue(name, { connection, prefix: 'bullbench' });
  rows.push(
    await compare({
      group: 'worker',
      case: 'submitTask (single) vs queue.add',
      ours: () => queue.submitTask({ query: 'hello' }),
      theirsLabel: 'bullmq queue.add',
      theirs: () => bull.add('task', { query: 'hello' }),
      iterations: 3000,
      maxRatio: 1,
    }),
  );
  await cleanup(ctx.redisUrl, `azsbench:{${name}}*`);
  await bull.obliterate({ force: true }).catch(() => undefined);
  await bull.close();
  await queue.close();
  connection.disconnect();
  return rows;
};
export default suite;
