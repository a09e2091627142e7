/**
 * azscale/resilience side by side with what it builds on or competes with, in one process:
 * - circuit-wrapped call vs raw cockatiel `execute` (target <= 1.2x) and vs opossum (target: faster)
 * - local ConcurrencyLimiter.run vs raw p-limit (target <= 1.3x)
 * - circuit call and local limiter slot vs the same calls of the baseline version (bench/baseline:
 *   issue 14's "no slower than 0.1.0", target <= 1.05x)
 * - distributed acquire+release on local Redis (standalone and Cluster): ops/s and p99, next to
 *   the same number of raw round trips (two commands) as a floor.
 */
import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import { Cluster, Redis } from 'ioredis';
import Opossum from 'opossum';
import pLimit from 'p-limit';
import {
  ConcurrencyLimiter,
  circuit,
  circuitBreaker as azsCircuitBreaker,
  closeCircuitBreakers,
} from '../src/resilience/index.js';
import { loadBaseline } from './baseline/load.js';
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

  // --- this version vs the baseline, side by side ---------------------------------------------
  const base = await loadBaseline<typeof import('../src/resilience/index.js')>('resilience');
  if (base) {
    const old = base.mod;
    const oldGuarded = old.circuit(work, { failureThreshold: 5, recoveryTimeout: 60 });
    const newGuarded = circuit(work, { failureThreshold: 5, recoveryTimeout: 60 });
    const oldNamed = old.circuit(work, { name: 'bench-old', failureThreshold: 5 });
    const newNamed = circuit(work, { name: 'bench-new', failureThreshold: 5 });
    const oldBreaker = old.circuitBreaker({ name: 'bench-old-execute' });
    const newBreaker = azsCircuitBreaker({ name: 'bench-new-execute' });
    const cases: [string, () => unknown, () => unknown][] = [
      ['circuit call (closed)', () => newGuarded(), () => oldGuarded()],
      ['circuit call, named (closed)', () => newNamed(), () => oldNamed()],
      [
        'CircuitBreaker.execute (closed)',
        () => newBreaker.execute(work),
        () => oldBreaker.execute(work),
      ],
    ];
    for (const [name, ours, theirs] of cases) {
      rows.push(
        await compare({
          group: 'resilience',
          case: `${name} vs baseline`,
          ours,
          theirsLabel: `baseline ${base.ref}`,
          theirs,
          iterations: 50_000,
          rounds: 5,
          maxRatio: 1.05,
        }),
      );
    }
    await old.closeCircuitBreakers();
    await closeCircuitBreakers();
    const oldLimiter = new old.ConcurrencyLimiter({ concurrency: 10 });
    const newLimiter = new ConcurrencyLimiter({ concurrency: 10 });
    for (const [label, concurrency] of [
      ['1 caller', 1],
      ['32 callers', 32],
    ] as const) {
      rows.push(
        await compare({
          group: 'resilience',
          case: `ConcurrencyLimiter.run local slot (${label}) vs baseline`,
          ours: () => newLimiter.run(work),
          theirsLabel: `baseline ${base.ref}`,
          theirs: () => oldLimiter.run(work),
          iterations: 50_000,
          concurrency,
          rounds: 5,
          maxRatio: 1.05,
        }),
      );
    }
    await oldLimiter.close();
    await newLimiter.close();
  }

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
