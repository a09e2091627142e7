import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CostOptimizer } from '../../src/scaling/index.js';
import { childEnv, servers, uniquePrefix } from '../harness/env.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./fixtures/record-spend.ts', import.meta.url));
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 28, 15, 20, 0);

interface ChildView {
  pid: number;
  seen: number;
  crossings: number;
  categories: Record<string, number>;
}

async function child(env: Record<string, string>): Promise<ChildView> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], {
    env: childEnv(env),
    timeout: 45_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as ChildView;
}

describe.each(['standalone', 'cluster'] as const)('two OS processes, one Redis (%s)', (target) => {
  it('record spend and see one total; the budget crossing is reported once; the next hour starts at 0', async () => {
    const prefix = uniquePrefix('cost2p');
    const env = {
      AZS_SPEND_TARGET: target,
      AZS_SPEND_PREFIX: prefix,
      AZS_SPEND_COUNT: '40',
      AZS_SPEND_AMOUNT: '0.25',
      AZS_SPEND_EXPECT: '20', // 2 processes x 40 x $0.25
      AZS_SPEND_BUDGET: '15',
      AZS_NOW_MS: String(T0),
    };
    const [a, b] = await Promise.all([child(env), child(env)]);
    expect(a.pid).not.toBe(b.pid);
    expect(a.seen).toBe(20);
    expect(b.seen).toBe(20);
    // Exactly one INCRBYFLOAT, in one of the two processes, crossed $15.
    expect(a.crossings + b.crossings).toBe(1);
    expect(a.categories).toEqual({ llm: 5, instances: 15 });

    const s = servers();
    const redis = target === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
    const clock = { t: T0 };
    const here = new CostOptimizer({ redis, prefix, now: () => clock.t });
    try {
      expect(await here.currentSpend()).toBe(20);
      clock.t = T0 + HOUR;
      expect(await here.currentSpend()).toBe(0);
    } finally {
      await here.close();
    }
  });
});
