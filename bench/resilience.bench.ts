/**
 * azscale/resilience side by side with what it builds on or competes with, in one process:
 * - circuit-wrapped call vs raw cockatiel `execute` (target <= 1.2x) and vs opossum (target: faster)
 * - local ConcurrencyLimiter.run vs raw p-limit (target <= 1.3x)
 * - distributed acquire+release on local Redis (standalone and Cluster): ops/s and p99, next to
 *   the same number of raw round trips (two commands) as a floor.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { Cluster, Redis } from 'ioredis';
import Opossum from 'opossum';
import pLimit from 'p-limit';
import { ConcurrencyLimiter, circuit, closeCircuitBreakers } from '../src/resilience/index.js';
import { type BenchContext, type BenchRow, compare } from './lib.js';

export default async function resilienceBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const work = async () => 1;

  // --- circuit -------------------------------------------------------------------------------
  const guarded = circuit(work, { failureThreshold: 5, recoveryTimeout: 60 });
  const policy = circuitBreaker(handleAll, {
    halfOpenAfter: 60_000,
    breaker: new ConsecutiveBreaker(5),
  });
  rows.push(
    await compare({
      group: 'resilience',
      case: 'circuit call (closed)',
      ours: () => guarded(),
      theirsLabel: 'cockatiel execute',
      theirs: () => policy.execute(work),
      iterations: 50_000,
      rounds: 5,
      maxRatio: 1.2,
    }),
  );
  const opossum = new Opossum(work, { errorThresholdPercentage: 50, resetTimeout: 60_000 });
  rows.push(
    await compare({
      group: 'resilience',
      case: 'circuit call (closed)',
      ours: () => guarded(),
      theirsLabel: 'opossum fire',
      theirs: () => opossum.fire(),
      iterations: 50_000,
      rounds: 5,
      minSpeedup: 1,
    }),
  );
  opossum.shutdown();
  await closeCircuitBreakers();

  // --- local limiter -------------------------------------------------------------------------
  const limiter = new ConcurrencyLimiter({ concurrency: 10 });
  const plimit = pLimit(10);
  rows.push(
    await compare({
      group: 'resilience',
      case: 'ConcurrencyLimiter.run local (10 slots, 32 callers)',
      ours: () => limiter.run(work),
      theirsLabel: 'p-limit',
      theirs: () => plimit(work),
      iterations: 50_000,
      concurrency: 32,
      rounds: 5,
      maxRatio: 1.3,
    }),
  );
  await limiter.close();

  // --- distributed limiter -------------------------------------------------------------------
  const targets = [
    { label: 'standalone', input: ctx.redisUrl as string | { nodes: typeof ctx.clusterNodes } },
    { label: 'cluster', input: { nodes: ctx.clusterNodes } },
  ];
  for (const t of targets) {
    const dist = new ConcurrencyLimiter({
      concurrency: 1000,
      redis: t.input,
      key: `bench:${t.label}`,
    });
    const raw = typeof t.input === 'string' ? new Redis(t.input) : new Cluster(t.input.nodes);
    const floorKey = `{bench:${t.label}}:floor`;
    await dist.run(work);
    rows.push(
      await compare({
        group: 'resilience',
        case: `distributed acquire+release (${t.label}, 1 caller)`,
        ours: () => dist.run(work),
        theirsLabel: 'raw INCR+DECR (2 round trips)',
        theirs: async () => {
          await raw.incr(floorKey);
          await raw.decr(floorKey);
        },
        iterations: 2000,
        rounds: 3,
      }),
    );
    rows.push(
      await compare({
        group: 'resilience',
        case: `distributed acquire+release (${t.label}, 16 callers)`,
        ours: () => dist.run(work),
        theirsLabel: 'raw INCR+DECR (2 round trips)',
        theirs: async () => {
          await raw.incr(floorKey);
          await raw.decr(floorKey);
        },
        iterations: 4000,
        concurrency: 16,
        rounds: 3,
      }),
    );
    await dist.close();
    await raw.del(floorKey);
    raw.disconnect();
  }
  return rows;
}
