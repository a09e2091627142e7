/**
 * The cost of `durability: { replicas: 1 }`: task submit, session append and spend increment with
 * the wait for a replica (WAIT 1) against the same call without it, on a primary with one local
 * replica started here (the shared bench Redis has none). Sequential callers show the added
 * latency per write; 50 in flight show what it does to throughput. Runs inside `npm run bench`
 * or alone: `npx tsx bench/durability.bench.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../test/harness/servers.js';
import { CostOptimizer } from '../src/scaling/index.js';
import { DistributedSessionManager } from '../src/session/index.js';
import { TaskQueue } from '../src/worker/index.js';
import { type BenchRow, type BenchSuite, compare, formatTable } from './lib.js';

const DURABLE = { replicas: 1, timeout: 5 };

const suite: BenchSuite = async () => {
  const primary = await startRedisServer();
  const replica = await startRedisServer({
    args: ['--replicaof', '127.0.0.1', String(primary.port)],
  });
  const rows: BenchRow[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const probe = new Redis(primary.url);
    while (!/state=online/.test(await probe.info('replication'))) {
      await new Promise((r) => setTimeout(r, 100));
    }
    probe.disconnect();
    const redis = primary.url;
    const pair = <T extends { close(): Promise<unknown> }>(make: (durable: boolean) => T) => {
      const a = make(true);
      const b = make(false);
      closers.push(
        () => a.close(),
        () => b.close(),
      );
      return [a, b] as const;
    };
    const [qd, qp] = pair(
      (d) =>
        new TaskQueue({
          redis,
          name: `bench-dur-${d}`,
          resultTtl: 60,
          ...(d ? { durability: DURABLE } : {}),
        }),
    );
    const [sd, sp] = pair(
      (d) =>
        new DistributedSessionManager({
          redis,
          prefix: `bench-dur-${d}:`,
          maxMessages: 20,
          ...(d ? { durability: DURABLE } : {}),
        }),
    );
    const [cd, cp] = pair(
      (d) =>
        new CostOptimizer({ redis, name: `bench-dur-${d}`, ...(d ? { durability: DURABLE } : {}) }),
    );
    let n = 0;
    const msg = () => ({ role: 'user', content: `message ${n++}` });
    for (const concurrency of [1, 50]) {
      const common = { iterations: concurrency === 1 ? 1000 : 4000, concurrency, rounds: 3 };
      const label = `${concurrency === 1 ? 'sequential' : '50 in flight'}`;
      rows.push(
        await compare({
          ...common,
          group: 'durability',
          case: `task submit, ${label}`,
          ours: () => qd.submitTask({ n: n++ }),
          theirsLabel: 'no durability',
          theirs: () => qp.submitTask({ n: n++ }),
        }),
        await compare({
          ...common,
          group: 'durability',
          case: `session append, ${label}`,
          ours: () => sd.appendMessage(`s${n % 100}`, msg()),
          theirsLabel: 'no durability',
          theirs: () => sp.appendMessage(`s${n % 100}`, msg()),
        }),
        await compare({
          ...common,
          group: 'durability',
          case: `spend increment, ${label}`,
          ours: () => cd.recordSpend(0.01),
          theirsLabel: 'no durability',
          theirs: () => cp.recordSpend(0.01),
        }),
      );
    }
  } finally {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await replica.stop();
    await primary.stop();
  }
  return rows;
};
export default suite;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rows = await suite({ redisUrl: '', clusterNodes: [], pgPrimaryUrl: '', pgReplicaUrls: [] });
  console.log(formatTable(rows));
  for (const r of rows) {
    console.log(
      `${r.case}: p50 ${r.ours.p50Ms.toFixed(3)} vs ${r.theirs.p50Ms.toFixed(3)} ms, p99 ${r.ours.p99Ms.toFixed(3)} vs ${r.theirs.p99Ms.toFixed(3)} ms, ${Math.round(r.ours.opsPerSec)} vs ${Math.round(r.theirs.opsPerSec)} ops/s`,
    );
  }
}
