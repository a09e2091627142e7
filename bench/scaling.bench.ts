/**
 * Scaling: the CostOptimizer's shared hour-bucket spend on Redis against the minimal hand-rolled
 * version on ioredis (INCRBYFLOAT + EXPIRE pipelined on a per-hour key; GET to read), sequential
 * and with 50 callers in flight. Ours adds validation, events and metrics, and does the increment
 * and its expiry (and the category hash) in one Lua script, so the expiry can never be lost.
 */
import { Redis } from 'ioredis';
import { CostOptimizer } from '../src/scaling/index.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const prefix = `bench-scaling-${process.pid}:`;
  const optimizer = new CostOptimizer({ redis: ctx.redisUrl, prefix, hourlyBudget: 1e12 });
  const raw = new Redis(ctx.redisUrl);
  const rawKey = () => `${prefix}raw:${new Date().toISOString().slice(0, 13)}`;
  try {
    for (const [label, concurrency, iterations] of [
      ['sequential', 1, 3000],
      ['50 concurrent', 50, 10000],
    ] as const) {
      rows.push(
        await compare({
          group: 'scaling',
          case: `recordSpend (Redis), ${label}`,
          ours: () => optimizer.recordSpend(0.001),
          theirsLabel: 'ioredis INCRBYFLOAT+EXPIRE pipeline',
          theirs: () => {
            const k = rawKey();
            return raw.pipeline().incrbyfloat(k, '0.001').expire(k, 90000).exec();
          },
          iterations,
          concurrency,
          maxRatio: 1.15,
        }),
      );
      rows.push(
        await compare({
          group: 'scaling',
          case: `recordSpend with category (Redis), ${label}`,
          ours: () => optimizer.recordSpend(0.001, { category: 'llm' }),
          theirsLabel: 'ioredis INCRBYFLOAT+EXPIRE pipeline',
          theirs: () => {
            const k = rawKey();
            return raw.pipeline().incrbyfloat(k, '0.001').expire(k, 90000).exec();
          },
          iterations,
          concurrency,
          maxRatio: 1.15,
        }),
      );
      rows.push(
        await compare({
          group: 'scaling',
          case: `currentSpend (Redis), ${label}`,
          ours: () => optimizer.currentSpend(),
          theirsLabel: 'ioredis GET',
          theirs: () => raw.get(rawKey()),
          iterations,
          concurrency,
          maxRatio: 1.15,
        }),
      );
    }
  } finally {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length) await raw.del(...keys);
    await optimizer.close();
    await raw.quit();
  }
  return rows;
};

export default suite;
