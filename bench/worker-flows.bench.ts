/**
 * Worker events and flows (issue 17), side by side with BullMQ in one run on the same Redis:
 * - how long after a handler returns does the waiter learn the result: `waitForResult` (woken by
 *   the queue's completion event) vs BullMQ `job.waitUntilFinished(queueEvents)`; p50/p99;
 * - a flow of 1 parent + 100 children vs 101 independent tasks (ours both), and vs a BullMQ
 *   FlowProducer flow of the same shape.
 */
import { randomBytes } from 'node:crypto';
import {
  Queue as BullQueue,
  FlowProducer,
  QueueEvents,
  Worker as BullWorker,
  type Job,
} from 'bullmq';
import { Redis } from 'ioredis';
import { BackgroundWorker, TaskQueue } from '../src/worker/index.js';
import { type BenchRow, type BenchSuite, type Measurement, compare } from './lib.js';

const WAITS = Number(process.env.AZS_BENCH_WAITS ?? 300);
const CHILDREN = 100;

function uid(): string {
  return randomBytes(5).toString('hex');
}

function summarise(lat: number[]): Measurement {
  const sorted = lat.slice().sort((a, b) => a - b);
  const pct = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  const mean = lat.reduce((a, b) => a + b, 0) / Math.max(1, lat.length);
  return {
    opsPerSec: mean > 0 ? 1000 / mean : 0,
    meanMs: mean,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    iterations: lat.length,
  };
}

/** Ours: per task, milliseconds from the handler's return to waitForResult's. */
async function oursWaitLatency(redisUrl: string, n: number): Promise<Measurement> {
  const queue = new TaskQueue({ name: `bench-w-${uid()}`, redis: redisUrl, prefix: 'azsbench:' });
  const returned = new Map<string, number>();
  const worker = new BackgroundWorker<null, null>({
    queue,
    numWorkers: 1,
    handler: async (_d, ctx) => {
      // Set just before the handler returns: what follows is the queue's own latency.
      returned.set(ctx.taskId, performance.now());
      return null;
    },
  });
  await worker.start();
  const lat: number[] = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const id = await queue.submitTask(null);
      await queue.waitForResult(id, { timeout: 30 });
      const end = performance.now();
      if (i >= 20) lat.push(end - (returned.get(id) as number));
    }
  } finally {
    await worker.stop();
    await queue.close();
  }
  return summarise(lat);
}

/** BullMQ: per job, milliseconds from the processor's return to waitUntilFinished's. */
async function bullWaitLatency(redisUrl: string, n: number): Promise<Measurement> {
  const name = `bench-w-${uid()}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new BullQueue(name, { connection, prefix: 'bullbench' });
  const events = new QueueEvents(name, {
    connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
    prefix: 'bullbench',
  });
  await events.waitUntilReady();
  const returned = new Map<string, number>();
  const worker = new BullWorker(
    name,
    async (job: Job) => {
      returned.set(job.id as string, performance.now());
      return null;
    },
    {
      connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
      concurrency: 1,
      prefix: 'bullbench',
    },
  );
  await worker.waitUntilReady();
  const lat: number[] = [];
  try {
    for (let i = 0; i < n + 20; i++) {
      const job = await queue.add('task', null);
      await job.waitUntilFinished(events, 30_000);
      const end = performance.now();
      if (i >= 20) lat.push(end - (returned.get(job.id as string) as number));
    }
  } finally {
    await worker.close();
    await events.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    connection.disconnect();
  }
  return summarise(lat);
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];

  // Warm both sides, then keep the better of two rounds each (as compare() does).
  await oursWaitLatency(ctx.redisUrl, 50);
  await bullWaitLatency(ctx.redisUrl, 50);
  let ours: Measurement | undefined;
  let theirs: Measurement | undefined;
  for (let r = 0; r < 2; r++) {
    const o = await oursWaitLatency(ctx.redisUrl, WAITS);
    const t = await bullWaitLatency(ctx.redisUrl, WAITS);
    if (!ours || o.p99Ms < ours.p99Ms) ours = o;
    if (!theirs || t.p99Ms < theirs.p99Ms) theirs = t;
  }
  const o = ours as Measurement;
  const t = theirs as Measurement;
  rows.push({
    group: 'worker-flows',
    case: `waitForResult, ms from handler return to the waiter (${WAITS} tasks, p50 ${o.p50Ms.toFixed(2)} / p99 ${o.p99Ms.toFixed(2)})`,
    ours: o,
    theirsLabel: `bullmq waitUntilFinished (p50 ${t.p50Ms.toFixed(2)} / p99 ${t.p99Ms.toFixed(2)})`,
    theirs: t,
    ratio: t.opsPerSec / o.opsPerSec,
    target: '<= 5 ms p99',
    met: o.p99Ms <= 5,
  });

  // Flows: one queue and worker pool for both shapes, so only the shape differs.
  const queue = new TaskQueue({
    name: `bench-f-${uid()}`,
    redis: ctx.redisUrl,
    prefix: 'azsbench:',
  });
  const worker = new BackgroundWorker<number, number>({
    queue,
    numWorkers: 10,
    handler: async (n) => n,
  });
  await worker.start();
  const kids = Array.from({ length: CHILDREN }, (_, i) => ({ data: i }));
  const flow = async () => {
    const tree = await queue.submitFlow({ data: -1, children: kids });
    await queue.waitForResult(tree.id, { timeout: 60 });
  };
  const flat = async () => {
    const ids = await queue.submitTasks(Array.from({ length: CHILDREN + 1 }, (_, i) => i));
    await Promise.all(ids.map((id) => queue.waitForResult(id, { timeout: 60 })));
  };
  rows.push(
    await compare({
      group: 'worker-flows',
      case: `flow of 1 parent + ${CHILDREN} children, submit to parent result (flows/s)`,
      ours: flow,
      theirsLabel: `${CHILDREN + 1} independent tasks (ours)`,
      theirs: flat,
      iterations: 20,
      warmup: 3,
      rounds: 3,
      maxRatio: 1.2,
    }),
  );

  // The same flow on BullMQ's FlowProducer, for scale.
  const bname = `bench-f-${uid()}`;
  const bconn = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
  const producer = new FlowProducer({ connection: bconn, prefix: 'bullbench' });
  const bevents = new QueueEvents(bname, {
    connection: new Redis(ctx.redisUrl, { maxRetriesPerRequest: null }),
    prefix: 'bullbench',
  });
  await bevents.waitUntilReady();
  const bworker = new BullWorker(bname, async (job: Job) => job.data, {
    connection: new Redis(ctx.redisUrl, { maxRetriesPerRequest: null }),
    concurrency: 10,
    prefix: 'bullbench',
  });
  await bworker.waitUntilReady();
  rows.push(
    await compare({
      group: 'worker-flows',
      case: `flow of 1 parent + ${CHILDREN} children, submit to parent result (flows/s)`,
      ours: flow,
      theirsLabel: 'bullmq FlowProducer',
      theirs: async () => {
        const node = await producer.add({
          name: 'parent',
          queueName: bname,
          data: -1,
          children: kids.map((k) => ({ name: 'child', queueName: bname, data: k.data })),
        });
        await node.job.waitUntilFinished(bevents, 60_000);
      },
      iterations: 20,
      warmup: 3,
      rounds: 2,
    }),
  );
  await bworker.close();
  await bevents.close();
  await producer.close();
  const bq = new BullQueue(bname, { connection: bconn, prefix: 'bullbench' });
  await bq.obliterate({ force: true }).catch(() => undefined);
  await bq.close();
  bconn.disconnect();
  await worker.stop();
  await queue.close();
  return rows;
};
export default suite;
