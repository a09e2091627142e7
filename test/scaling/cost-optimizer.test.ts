import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BudgetExceededError,
  isBudgetExceededError,
  isValidationError,
} from '../../src/core/errors.js';
import {
  type BudgetExceededEvent,
  CostOptimizer,
  type CostOptimizerOptions,
  DEFAULT_HOURLY_BUDGET,
  DEFAULT_INSTANCE_TYPES,
  DEFAULT_PRICES,
  DEFAULT_PRICES_AS_OF,
  findModelPrice,
} from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 28, 15, 0, 0); // 15:00:00 UTC

const open: CostOptimizer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** An optimizer on a manual clock (starting at `start`). */
function rig(opts: CostOptimizerOptions = {}, start = T0) {
  const clock = { t: start };
  const optimizer = new CostOptimizer({ ...opts, now: () => clock.t });
  open.push(optimizer);
  const events: BudgetExceededEvent[] = [];
  optimizer.on('budgetExceeded', (e) => events.push(e));
  return { optimizer, clock, events };
}

async function expectValidation(p: Promise<unknown> | (() => unknown), option: string) {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(
    isValidationError(err),
    `expected a ValidationError for ${option}, got ${String(err)}`,
  ).toBe(true);
  expect((err as { option?: string }).option).toBe(option);
}

describe('CostOptimizer: the seed defaults', () => {
  it('budget $100/hour, the seed instance mapping, a dated price table', () => {
    const o = new CostOptimizer();
    open.push(o);
    expect(DEFAULT_HOURLY_BUDGET).toBe(100);
    expect(o.hourlyBudget).toBe(100);
    expect(DEFAULT_INSTANCE_TYPES).toEqual({
      cpu_intensive: 'c5.xlarge',
      memory_intensive: 'r5.xlarge',
      general: 't3.xlarge',
    });
    expect(DEFAULT_PRICES_AS_OF).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(Object.isFrozen(DEFAULT_PRICES.models)).toBe(true);
  });

  it.each([
    ['cpu_intensive', 'c5.xlarge'],
    ['memory_intensive', 'r5.xlarge'],
    ['general', 't3.xlarge'],
    ['anything else', 't3.xlarge'],
  ])('optimizeInstanceTypes(%s) -> %s', (w, t) => {
    const { optimizer } = rig();
    expect(optimizer.optimizeInstanceTypes(w)).toBe(t);
  });

  it('optimizeInstanceTypes is extensible and overridable', () => {
    const { optimizer } = rig({
      instanceTypes: { gpu_intensive: 'g5.xlarge', general: 'm5.xlarge' },
    });
    expect(optimizer.optimizeInstanceTypes('gpu_intensive')).toBe('g5.xlarge');
    expect(optimizer.optimizeInstanceTypes('cpu_intensive')).toBe('c5.xlarge');
    expect(optimizer.optimizeInstanceTypes('toString')).toBe('m5.xlarge'); // no prototype leaks
  });
});

describe('hour buckets (memory)', () => {
  it('spend accumulates within the hour and a new hour starts at zero', async () => {
    const { optimizer, clock } = rig();
    expect(await optimizer.recordSpend(10)).toBe(10);
    clock.t = T0 + 59 * 60_000;
    expect(await optimizer.recordSpend(5, { category: 'instances' })).toBe(15);
    expect(await optimizer.currentSpend()).toBe(15);
    clock.t = T0 + HOUR; // 16:00:00 exactly
    expect(await optimizer.currentSpend()).toBe(0);
    expect(await optimizer.remainingBudget()).toBe(100);
    await optimizer.recordSpend(1);
    expect(await optimizer.currentSpend()).toBe(1);
    expect(optimizer.hourStartMs()).toBe(T0 + HOUR);
  });

  it('follows the system clock by default (fake timers work)', async () => {
    const o = new CostOptimizer();
    open.push(o);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(T0 + 5 * 60_000);
      await o.recordSpend(3);
      expect(await o.currentSpend()).toBe(3);
      vi.setSystemTime(T0 + HOUR);
      expect(await o.currentSpend()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('the seed bug is gone: spend no longer blocks scaling forever', async () => {
    const { optimizer, clock } = rig();
    await optimizer.recordSpend(99.9);
    expect(
      await optimizer.shouldScaleUp({ currentInstances: 3, cpuUsage: 90, costPerInstance: 1 }),
    ).toBe(false);
    clock.t += HOUR;
    expect(
      await optimizer.shouldScaleUp({ currentInstances: 3, cpuUsage: 90, costPerInstance: 1 }),
    ).toBe(true);
  });

  it('spendByCategory splits the hour', async () => {
    const { optimizer } = rig();
    await optimizer.recordSpend(2, { category: 'instances' });
    await optimizer.recordLLMUsage({
      model: 'gpt-4o-mini',
      inputTokens: 1_000_000,
      outputTokens: 0,
    });
    await optimizer.recordSpend(1);
    const c = await optimizer.spendByCategory();
    expect(c.instances).toBe(2);
    expect(c.llm).toBeCloseTo(0.15, 10);
    expect(await optimizer.currentSpend()).toBeCloseTo(3.15, 10);
  });

  it('emits budgetExceeded once, from the write that crosses the budget', async () => {
    const { optimizer, events } = rig({ hourlyBudget: 10 });
    await optimizer.recordSpend(6);
    await optimizer.recordSpend(4); // exactly at the budget: not exceeded
    expect(events).toHaveLength(0);
    await optimizer.recordSpend(1);
    await optimizer.recordSpend(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      source: 'recordSpend',
      spent: 11,
      budget: 10,
      hourStartMs: T0,
    });
  });
});

describe('recordLLMUsage', () => {
  it('prices tokens from the model table (dollars per million tokens)', async () => {
    const { optimizer } = rig();
    // gpt-4o: $2.50 in, $10 out per million.
    const cost = await optimizer.recordLLMUsage({
      model: 'gpt-4o',
      inputTokens: 2000,
      outputTokens: 500,
    });
    expect(cost).toBeCloseTo((2000 * 2.5 + 500 * 10) / 1e6, 12);
    expect(await optimizer.currentSpend()).toBeCloseTo(cost, 12);
  });

  it('cached input tokens use the cached price', () => {
    const { optimizer } = rig();
    const c = optimizer.estimateLLMCost({
      model: 'gpt-4.1',
      inputTokens: 0,
      outputTokens: 0,
      cachedInputTokens: 1_000_000,
    });
    expect(c).toBeCloseTo(0.5, 12);
  });

  it('matches case-insensitively and dated snapshots, never mere prefixes', () => {
    const m = DEFAULT_PRICES.models;
    expect(findModelPrice(m, 'GPT-4o')).toBe(m['gpt-4o']);
    expect(findModelPrice(m, 'gpt-4o-2024-08-06')).toBe(m['gpt-4o']);
    expect(findModelPrice(m, 'gpt-4o-mini-2024-07-18')).toBe(m['gpt-4o-mini']);
    expect(findModelPrice(m, 'claude-sonnet-4-20250514')).toBe(m['claude-sonnet-4']);
    expect(findModelPrice(m, 'gpt-5-pro')).toBeUndefined();
    expect(findModelPrice(m, 'gpt-4o-realtime')).toBeUndefined();
  });

  it('uses prices passed by the user, merged over the defaults', async () => {
    const { optimizer } = rig({ prices: { models: { 'My-Finetune': { input: 4, output: 16 } } } });
    expect(
      await optimizer.recordLLMUsage({ model: 'my-finetune', inputTokens: 1e6, outputTokens: 1e6 }),
    ).toBe(20);
    expect(
      optimizer.estimateLLMCost({ model: 'gpt-4o-mini', inputTokens: 1e6, outputTokens: 0 }),
    ).toBeCloseTo(0.15);
  });

  it.each([
    [{ model: 'no-such-model', inputTokens: 1, outputTokens: 1 }, 'model'],
    [{ model: '', inputTokens: 1, outputTokens: 1 }, 'model'],
    [{ model: 'gpt-4o', inputTokens: Number.NaN, outputTokens: 1 }, 'inputTokens'],
    [{ model: 'gpt-4o', inputTokens: -5, outputTokens: 1 }, 'inputTokens'],
    [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 2.5 }, 'outputTokens'],
    [{ model: 'gpt-4o', inputTokens: 1, outputTokens: '3' }, 'outputTokens'],
    [{ model: 'gpt-4o', inputTokens: 1, outputTokens: 1, category: '' }, 'category'],
  ])('rejects %j naming %s', async (usage, option) => {
    const { optimizer } = rig();
    await expectValidation(optimizer.recordLLMUsage(usage as never), option);
    expect(await optimizer.currentSpend()).toBe(0);
  });
});

describe('shouldScaleUp: the seed rule, fixed', () => {
  it.each([
    // [spent, minute of the hour, cpu %, cost/h, expected]
    [0, 0, 75, 0.2, true], // the seed's usage example
    [0, 0, 70, 0.2, false], // not above 70
    [0, 0, 10, 0.2, false],
    [99.9, 0, 90, 0.2, false], // 99.9 + 0.2 > 100
    [99.9, 45, 90, 0.2, true], // only a quarter hour left: 99.9 + 0.05 <= 100
    [95, 30, 90, 10, true], // 95 + 10 * 0.5 = 100: at the budget, not over it
    [95, 30, 90, 12, false], // 95 + 12 * 0.5 = 101
  ])('spent %d at :%d, cpu %d%%, $%d/h -> %s', async (spent, minute, cpu, cost, expected) => {
    const { optimizer, clock } = rig();
    clock.t = T0 + minute * 60_000;
    if (spent) await optimizer.recordSpend(spent);
    const r = await optimizer.shouldScaleUp({
      currentInstances: 10,
      cpuUsage: cpu,
      costPerInstance: cost,
    });
    expect(r).toBe(expected);
  });

  it('refusing emits budgetExceeded with the projection', async () => {
    const { optimizer, clock, events } = rig({ hourlyBudget: 10 });
    clock.t = T0 + 30 * 60_000;
    await optimizer.recordSpend(9);
    expect(
      await optimizer.shouldScaleUp({ currentInstances: 2, cpuUsage: 95, costPerInstance: 4 }),
    ).toBe(false);
    expect(events).toEqual([
      { source: 'shouldScaleUp', spent: 9, projected: 11, budget: 10, hourStartMs: T0 },
    ]);
  });

  it('prices the instance from the table when given a type', async () => {
    const { optimizer } = rig({ hourlyBudget: 0.1 });
    // c5.xlarge costs $0.17/h: over a $0.10 budget at the start of the hour.
    expect(
      await optimizer.shouldScaleUp({
        currentInstances: 1,
        cpuUsage: 99,
        instanceType: 'c5.xlarge',
      }),
    ).toBe(false);
    expect(optimizer.instancePrice('r5.xlarge')).toBe(0.252);
  });

  it('scaleUpCpuPercent is overridable', async () => {
    const { optimizer } = rig({ scaleUpCpuPercent: 50 });
    expect(
      await optimizer.shouldScaleUp({ currentInstances: 1, cpuUsage: 55, costPerInstance: 1 }),
    ).toBe(true);
  });

  it.each([
    [{ currentInstances: 1, cpuUsage: 101, costPerInstance: 1 }, 'cpuUsage'],
    [{ currentInstances: 1, cpuUsage: -1, costPerInstance: 1 }, 'cpuUsage'],
    [{ currentInstances: 1, cpuUsage: Number.NaN, costPerInstance: 1 }, 'cpuUsage'],
    [
      { currentInstances: 1, cpuUsage: 0.75 * Number.POSITIVE_INFINITY, costPerInstance: 1 },
      'cpuUsage',
    ],
    [{ currentInstances: -1, cpuUsage: 50, costPerInstance: 1 }, 'currentInstances'],
    [{ currentInstances: 1.5, cpuUsage: 50, costPerInstance: 1 }, 'currentInstances'],
    [{ currentInstances: 1, cpuUsage: 50, costPerInstance: -0.2 }, 'costPerInstance'],
    [{ currentInstances: 1, cpuUsage: 50 }, 'costPerInstance'],
    [{ currentInstances: 1, cpuUsage: 50, instanceType: 'z9.mega' }, 'instanceType'],
  ])('rejects %j naming %s', async (input, option) => {
    const { optimizer } = rig();
    await expectValidation(optimizer.shouldScaleUp(input as never), option);
  });
});

describe('desiredReplicas: HPA formula, clamped, budget-aware', () => {
  it.each([
    // [current, metric, target, min, max, expected]
    [4, 140, 70, 1, 50, 8], // ceil(4 * 2)
    [4, 75, 70, 1, 50, 5], // ceil(4.29)
    [4, 70, 70, 1, 50, 4],
    [10, 35, 70, 1, 50, 5], // scale in
    [10, 1, 70, 4, 50, 4], // the seed's minReplicas 4
    [40, 200, 70, 4, 50, 50], // the seed's maxReplicas 50
    [0, 90, 70, 2, 10, 2], // nothing running: min
  ])(
    'current %d, metric %d, target %d, min %d, max %d -> %d',
    async (current, metric, target, min, max, expected) => {
      const { optimizer } = rig();
      expect(await optimizer.desiredReplicas({ current, metric, target, min, max })).toBe(expected);
    },
  );

  it('tolerance leaves the count alone near the target (HPA uses 0.1)', async () => {
    const { optimizer } = rig();
    expect(
      await optimizer.desiredReplicas({ current: 4, metric: 75, target: 70, tolerance: 0.1 }),
    ).toBe(4);
    expect(
      await optimizer.desiredReplicas({ current: 4, metric: 84, target: 70, tolerance: 0.1 }),
    ).toBe(5);
  });

  it('caps growth at what the budget affords for a full hour', async () => {
    const { optimizer, events } = rig({ hourlyBudget: 10 });
    // Formula says 16; $1/h each, $10/h budget: 10.
    expect(
      await optimizer.desiredReplicas({
        current: 4,
        metric: 200,
        target: 50,
        max: 20,
        costPerInstance: 1,
      }),
    ).toBe(10);
    expect(events[0]?.source).toBe('desiredReplicas');
  });

  it('caps growth at what is left of this hour', async () => {
    const { optimizer, clock } = rig({ hourlyBudget: 10 });
    clock.t = T0 + 30 * 60_000; // half an hour left: one more $2/h instance costs $1
    await optimizer.recordSpend(7.5);
    expect(
      await optimizer.desiredReplicas({ current: 2, metric: 300, target: 50, costPerInstance: 2 }),
    ).toBe(4);
  });

  it('the budget never forces a scale-in or goes below min', async () => {
    const { optimizer } = rig({ hourlyBudget: 1 });
    await optimizer.recordSpend(5);
    expect(
      await optimizer.desiredReplicas({ current: 6, metric: 90, target: 70, costPerInstance: 1 }),
    ).toBe(6);
    expect(
      await optimizer.desiredReplicas({
        current: 0,
        metric: 90,
        target: 70,
        min: 2,
        costPerInstance: 1,
      }),
    ).toBe(2);
    expect(
      await optimizer.desiredReplicas({ current: 6, metric: 35, target: 70, costPerInstance: 1 }),
    ).toBe(3);
  });

  it.each([
    [{ current: -1, metric: 1, target: 1 }, 'current'],
    [{ current: 1, metric: Number.NaN, target: 1 }, 'metric'],
    [{ current: 1, metric: 1, target: 0 }, 'target'],
    [{ current: 1, metric: 1, target: 1, min: 5, max: 2 }, 'max'],
    [{ current: 1, metric: 1, target: 1, costPerInstance: -1 }, 'costPerInstance'],
  ])('rejects %j naming %s', async (input, option) => {
    const { optimizer } = rig();
    await expectValidation(optimizer.desiredReplicas(input as never), option);
  });
});

describe('guard', () => {
  it('runs the call while there is budget, throws BudgetExceededError after', async () => {
    const { optimizer, events } = rig({ hourlyBudget: 1 });
    let calls = 0;
    const ask = optimizer.guard(async (q: string) => {
      calls++;
      await optimizer.recordLLMUsage({
        model: 'gpt-4o',
        inputTokens: 100_000,
        outputTokens: 50_000,
      }); // $0.75
      return `answer to ${q}`;
    });
    expect(await ask('a')).toBe('answer to a');
    expect(await ask('b')).toBe('answer to b'); // $0.75 spent < $1: allowed, ends at $1.50
    const err = await ask('c').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect(isBudgetExceededError(err)).toBe(true);
    expect((err as BudgetExceededError).code).toBe('AZS_BUDGET_EXCEEDED');
    expect((err as BudgetExceededError).context).toMatchObject({ budget: 1, spent: 1.5 });
    expect(calls).toBe(2);
    expect(events.map((e) => e.source)).toEqual(['recordSpend', 'guard']);
  });

  it('refuses a call whose estimate would overshoot', async () => {
    const { optimizer } = rig({ hourlyBudget: 1 });
    await optimizer.recordSpend(0.9);
    const ask = optimizer.guard(() => 'ok', { estimatedCost: 0.2 });
    await expect(ask()).rejects.toThrow(BudgetExceededError);
    expect(await optimizer.guard(() => 'ok', { estimatedCost: 0.1 })()).toBe('ok');
  });

  it('the next hour lets calls through again', async () => {
    const { optimizer, clock } = rig({ hourlyBudget: 1 });
    await optimizer.recordSpend(2);
    const f = optimizer.guard(() => 42);
    await expect(f()).rejects.toThrow(/hourly budget of \$1 is used up/);
    clock.t += HOUR;
    expect(await f()).toBe(42);
  });

  it('awaiting the guard itself runs fn once', async () => {
    const { optimizer } = rig({ hourlyBudget: 1 });
    let n = 0;
    expect(await optimizer.guard(() => ++n)).toBe(1);
    await optimizer.recordSpend(1);
    await expect(optimizer.guard(() => ++n)).rejects.toThrow(BudgetExceededError);
    expect(n).toBe(1);
  });

  it('passes errors of fn through', async () => {
    const { optimizer } = rig();
    await expect(optimizer.guard(() => Promise.reject(new Error('boom')))()).rejects.toThrow(
      'boom',
    );
  });
});

describe('bad input', () => {
  it.each([
    [-1, 'amount'],
    [Number.NaN, 'amount'],
    [Number.POSITIVE_INFINITY, 'amount'],
    ['5', 'amount'],
  ])('recordSpend(%s) -> ValidationError naming %s', async (amount, option) => {
    const { optimizer } = rig();
    await expectValidation(optimizer.recordSpend(amount as number), option);
    expect(await optimizer.currentSpend()).toBe(0);
  });

  it('rejects a bad category', async () => {
    const { optimizer } = rig();
    await expectValidation(optimizer.recordSpend(1, { category: 'a\nb' }), 'category');
  });

  it.each([
    [{ hourlyBudget: -1 }, 'hourlyBudget'],
    [{ hourlyBudget: Number.NaN }, 'hourlyBudget'],
    [{ scaleUpCpuPercent: 120 }, 'scaleUpCpuPercent'],
    [{ bucketTtl: 60 }, 'bucketTtl'],
    [{ prices: { models: { x: { input: -1, output: 1 } } } }, 'prices.models.x.input'],
    [{ prices: { instances: { y: 'cheap' } } }, 'prices.instances.y'],
    [{ instanceTypes: { gpu: 5 } }, 'instanceTypes.gpu'],
    [{ redis: 'http://localhost:6379' }, 'redis'],
    [{ redis: 42 }, 'redis'],
    [{ now: 'yesterday' }, 'now'],
  ])('constructor %j -> ValidationError naming %s', async (opts, option) => {
    await expectValidation(() => new CostOptimizer(opts as never), option);
  });

  it('optimizeInstanceTypes rejects a non-string', async () => {
    const { optimizer } = rig();
    await expectValidation(() => optimizer.optimizeInstanceTypes(3 as never), 'workloadType');
  });
});

describe('shared total over Redis', () => {
  const s = servers();
  const targets = [
    ['standalone', () => s.redisUrl],
    ['cluster', () => ({ nodes: s.clusterNodes })],
  ] as const;

  it.each(targets)(
    '%s: two optimizers sharing a prefix see one total; an hour rollover resets it',
    async (_, target) => {
      const prefix = uniquePrefix('cost');
      const clock = { t: T0 + 10 * 60_000 };
      const a = new CostOptimizer({
        redis: target(),
        prefix,
        hourlyBudget: 50,
        now: () => clock.t,
      });
      const b = new CostOptimizer({
        redis: target(),
        prefix,
        hourlyBudget: 50,
        now: () => clock.t,
      });
      const other = new CostOptimizer({
        redis: target(),
        prefix,
        name: 'other-team',
        now: () => clock.t,
      });
      open.push(a, b, other);
      await a.recordSpend(20);
      await b.recordLLMUsage({
        model: 'claude-sonnet-4',
        inputTokens: 1_000_000,
        outputTokens: 1_000_000,
      }); // $18
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).recordSpend(0.25)));
      expect(await a.currentSpend()).toBeCloseTo(43, 9);
      expect(await b.currentSpend()).toBeCloseTo(43, 9);
      expect(await other.currentSpend()).toBe(0);
      // Each one refuses a scale-up the other's spend made unaffordable.
      expect(
        await a.shouldScaleUp({ currentInstances: 5, cpuUsage: 90, costPerInstance: 10 }),
      ).toBe(false);
      const cats = await b.spendByCategory();
      expect(cats.llm).toBeCloseTo(18, 9);
      clock.t = T0 + HOUR + 1;
      expect(await a.currentSpend()).toBe(0);
      expect(await b.currentSpend()).toBe(0);
      expect(
        await a.shouldScaleUp({ currentInstances: 5, cpuUsage: 90, costPerInstance: 10 }),
      ).toBe(true);
      clock.t = T0 + 20 * 60_000; // the previous hour's bucket is still there until it expires
      expect(await b.currentSpend()).toBeCloseTo(43, 9);
    },
  );
});
