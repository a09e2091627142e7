/**
 * API contract of scaling policy, written from the issue text.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as scalingModule from '../../src/scaling/index.js';
import {
  BudgetExceededError,
  CostOptimizer,
  ResourceConfig,
  ScalingAdvisor,
  ValidationError,
  calculateWorkers,
  getConfigForScale,
} from '../../src/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const s = servers();
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

describe('scaling API contract: exports', () => {
  it('the names exist on azscale and azscale/scaling', () => {
    expect(scalingModule.ResourceConfig).toBe(ResourceConfig);
    expect(scalingModule.getConfigForScale).toBe(getConfigForScale);
    expect(scalingModule.calculateWorkers).toBe(calculateWorkers);
    expect(scalingModule.ScalingAdvisor).toBe(ScalingAdvisor);
    expect(scalingModule.CostOptimizer).toBe(CostOptimizer);
    expect(scalingModule.BudgetExceededError).toBe(BudgetExceededError);
    expect(scalingModule.ValidationError).toBe(ValidationError);
  });
});

describe('scaling API contract: presets and sizing', () => {
  it('ResourceConfig.SMALL | MEDIUM | LARGE | XLARGE: the seed values, frozen', () => {
    expect(ResourceConfig.SMALL).toEqual({
      workers: 2,
      cpu_limit: '1',
      memory_limit: '2Gi',
      llm_concurrent_requests: 5,
      cache_size_mb: 500,
    });
    expect(ResourceConfig.MEDIUM.workers).toBe(4);
    expect(ResourceConfig.LARGE.workers).toBe(8);
    expect(ResourceConfig.LARGE.memory_limit).toBe('8Gi');
    expect(ResourceConfig.XLARGE.workers).toBe(16);
    expect(ResourceConfig.XLARGE.llm_concurrent_requests).toBe(50);
    expect(Object.isFrozen(ResourceConfig)).toBe(true);
    expect(Object.isFrozen(ResourceConfig.LARGE)).toBe(true);
    expect(() => {
      (ResourceConfig.LARGE as { workers: number }).workers = 99;
    }).toThrow();
    expect(ResourceConfig.LARGE.workers).toBe(8);
  });

  it('getConfigForScale is case-insensitive; unknown -> ValidationError', () => {
    expect(getConfigForScale('large')).toEqual(ResourceConfig.LARGE);
    expect(getConfigForScale('LARGE')).toEqual(ResourceConfig.LARGE);
    expect(getConfigForScale('Small')).toEqual(ResourceConfig.SMALL);
    expect(getConfigForScale('xlarge')).toEqual(ResourceConfig.XLARGE);
    expect(() => getConfigForScale('huge')).toThrow(ValidationError);
  });

  it('calculateWorkers: 2x CPUs for io, 1x for cpu, capped; MAX_WORKERS env honoured', () => {
    expect(calculateWorkers({ workload: 'io', cpus: 4 })).toBe(8);
    expect(calculateWorkers({ workload: 'cpu', cpus: 4 })).toBe(4);
    expect(calculateWorkers({ cpus: 4 })).toBe(8);
    expect(calculateWorkers({ workload: 'io', cpus: 64, maxWorkers: 10 })).toBe(10);
    const saved = process.env.MAX_WORKERS;
    try {
      process.env.MAX_WORKERS = '6';
      expect(calculateWorkers({ workload: 'io', cpus: 8 })).toBe(6);
      delete process.env.MAX_WORKERS;
      expect(calculateWorkers({ workload: 'io', cpus: 8 })).toBe(16);
    } finally {
      if (saved === undefined) delete process.env.MAX_WORKERS;
      else process.env.MAX_WORKERS = saved;
    }
    expect(calculateWorkers()).toBeGreaterThanOrEqual(1);
    expect(() => calculateWorkers({ cpus: -1 })).toThrow(ValidationError);
  });
});

describe('scaling API contract: ScalingAdvisor', () => {
  const T0 = 1_700_000_000_000;

  it('assess returns { scale, direction, reasons, bottleneck }; calm -> hold', () => {
    const a = new ScalingAdvisor();
    const r = a.assess({
      p95LatencyMs: 1500,
      cpu: 0.5,
      memory: 0.5,
      errorRate: 0.001,
      timestampMs: T0,
    });
    expect(r.scale).toBe('hold');
    expect(['horizontal', 'vertical']).toContain(r.direction);
    expect(Array.isArray(r.reasons)).toBe(true);
    expect(r.bottleneck).toBeNull();
  });

  it('each indicator: P95 > 2 s, memory > 80 %, error rate > 1 %, LLM 429s -> up', () => {
    const up = (snap: Parameters<ScalingAdvisor['assess']>[0]) => new ScalingAdvisor().assess(snap);
    const lat = up({ p95LatencyMs: 2500, cpu: 0.3 });
    expect(lat.scale).toBe('up');
    expect(lat.reasons.join(' ')).toMatch(/p95|latency/i);
    const mem = up({ memory: 0.9 });
    expect(mem).toMatchObject({ scale: 'up', bottleneck: 'memory' });
    const err = up({ errorRate: 0.05 });
    expect(err.scale).toBe('up');
    const llm = up({ llmRateLimitRate: 0.2 });
    expect(llm).toMatchObject({
      scale: 'up',
      direction: 'horizontal',
      bottleneck: 'llm-rate-limit',
    });
    // At or under the thresholds: no scale-up.
    expect(up({ p95LatencyMs: 2000, memory: 0.8, errorRate: 0.01 }).scale).not.toBe('up');
  });

  it('custom thresholds override the defaults', () => {
    const a = new ScalingAdvisor({
      thresholds: { p95LatencyMs: 500, cpu: 0.7, memory: 0.8, errorRate: 0.01 },
    });
    expect(a.assess({ p95LatencyMs: 800 }).scale).toBe('up');
    expect(new ScalingAdvisor().assess({ p95LatencyMs: 800 }).scale).not.toBe('up');
  });

  it('CPU must be sustained, not one sample', () => {
    const a = new ScalingAdvisor();
    expect(a.assess({ cpu: 0.95, timestampMs: T0 }).scale).not.toBe('up');
    let last = a.assess({ cpu: 0.95, timestampMs: T0 + 1000 });
    for (let t = 15_000; t <= 10 * 60_000 && last.scale !== 'up'; t += 15_000) {
      last = a.assess({ cpu: 0.95, timestampMs: T0 + t });
    }
    expect(last.scale).toBe('up');
    expect(last.bottleneck).toBe('cpu');
    // One dip resets the streak.
    const b = new ScalingAdvisor();
    for (let t = 0; t <= 10 * 60_000; t += 15_000) {
      const cpu = (t / 15_000) % 2 === 0 ? 0.95 : 0.5;
      expect(b.assess({ cpu, timestampMs: T0 + t }).scale).not.toBe('up');
    }
  });

  it('decision matrix: CPU bound vertical initially, horizontal long-term; I/O and network horizontal', () => {
    const sustainedCpu = (replicas: number) => {
      const a = new ScalingAdvisor();
      let r = a.assess({ cpu: 0.95, replicas, timestampMs: T0 });
      for (let t = 15_000; t <= 10 * 60_000 && r.scale !== 'up'; t += 15_000) {
        r = a.assess({ cpu: 0.95, replicas, timestampMs: T0 + t });
      }
      return r;
    };
    expect(sustainedCpu(1)).toMatchObject({
      scale: 'up',
      bottleneck: 'cpu',
      direction: 'vertical',
    });
    expect(sustainedCpu(10)).toMatchObject({
      scale: 'up',
      bottleneck: 'cpu',
      direction: 'horizontal',
    });
    const net = new ScalingAdvisor().assess({ networkUtilization: 0.95 });
    expect(net).toMatchObject({ scale: 'up', bottleneck: 'network', direction: 'horizontal' });
    const io = new ScalingAdvisor().assess({ p95LatencyMs: 3000, cpu: 0.2, ioWait: 0.6 });
    expect(io).toMatchObject({ scale: 'up', bottleneck: 'io', direction: 'horizontal' });
  });

  it('a growing queue (positive trend) means up; a flat noisy one does not', () => {
    const a = new ScalingAdvisor();
    expect(a.assess({ queueDepthHistory: [10, 20, 30, 45, 60, 80] }).scale).toBe('up');
    expect(
      new ScalingAdvisor().assess({ queueDepthHistory: [50, 52, 49, 51, 50, 48] }).scale,
    ).not.toBe('up');
  });

  it('no flapping: a noisy series around the threshold never alternates up/down', () => {
    const a = new ScalingAdvisor();
    const advice: string[] = [];
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 400; i++) {
      const p95 = 2000 + (rnd() - 0.5) * 400; // 1800..2200 ms
      const r = a.assess({
        p95LatencyMs: p95,
        cpu: 0.5,
        memory: 0.5,
        timestampMs: T0 + i * 15_000,
      });
      advice.push(r.scale);
    }
    expect(advice).toContain('up');
    expect(advice).not.toContain('down');
  });

  it('scale down only after a stable low period (hysteresis)', () => {
    const a = new ScalingAdvisor();
    const low = { p95LatencyMs: 100, cpu: 0.05, memory: 0.1, errorRate: 0 };
    expect(a.assess({ ...low, timestampMs: T0 }).scale).toBe('hold');
    expect(a.assess({ ...low, timestampMs: T0 + 60_000 }).scale).toBe('hold');
    let r = a.assess({ ...low, timestampMs: T0 + 120_000 });
    for (let t = 135_000; t <= 20 * 60_000 && r.scale !== 'down'; t += 15_000) {
      r = a.assess({ ...low, timestampMs: T0 + t });
    }
    expect(r.scale).toBe('down');
  });

  it('bad snapshot values -> ValidationError', () => {
    expect(() => new ScalingAdvisor().assess({ cpu: Number.NaN })).toThrow(ValidationError);
    expect(() => new ScalingAdvisor().assess({ memory: -1 })).toThrow(ValidationError);
  });
});

describe('scaling API contract: CostOptimizer (memory)', () => {
  it('recordSpend / currentSpend / an hour rollover resets (injected clock)', async () => {
    let now = Date.UTC(2025, 0, 1, 10, 30);
    const o = new CostOptimizer({ hourlyBudget: 100, now: () => now });
    await o.recordSpend(10);
    await o.recordSpend(5.5, { category: 'compute' });
    expect(await o.currentSpend()).toBeCloseTo(15.5, 9);
    now = Date.UTC(2025, 0, 1, 11, 0, 1);
    expect(await o.currentSpend()).toBe(0);
  });

  it('recordLLMUsage prices tokens from the model table (defaults and custom)', async () => {
    const o = new CostOptimizer({
      hourlyBudget: 100,
      prices: { instances: { 'x.large': 1 }, models: { 'my-model': { input: 2, output: 8 } } },
    });
    const cost = await o.recordLLMUsage({
      model: 'my-model',
      inputTokens: 1_000_000,
      outputTokens: 500_000,
    });
    expect(cost).toBeCloseTo(6, 9);
    expect(await o.currentSpend()).toBeCloseTo(6, 9);
    const d = await o.recordLLMUsage({
      model: 'gpt-4o-mini',
      inputTokens: 1000,
      outputTokens: 1000,
    });
    expect(d).toBeGreaterThan(0);
    await expect(
      o.recordLLMUsage({ model: 'no-such-model', inputTokens: 1, outputTokens: 1 }),
    ).rejects.toThrow(ValidationError);
    await expect(
      o.recordLLMUsage({ model: 'my-model', inputTokens: Number.NaN, outputTokens: 1 }),
    ).rejects.toThrow(ValidationError);
  });

  it('shouldScaleUp: the seed rule, refusing over budget with a budgetExceeded event', async () => {
    const now = Date.UTC(2025, 0, 1, 10, 0, 0); // start of an hour: a full hour is left
    const o = new CostOptimizer({ hourlyBudget: 100, now: () => now });
    const events: unknown[] = [];
    o.on('budgetExceeded', (e) => events.push(e));
    expect(await o.shouldScaleUp({ currentInstances: 3, cpuUsage: 85, costPerInstance: 2 })).toBe(
      true,
    );
    expect(await o.shouldScaleUp({ currentInstances: 3, cpuUsage: 50, costPerInstance: 2 })).toBe(
      false,
    );
    expect(events).toHaveLength(0);
    await o.recordSpend(99);
    expect(await o.shouldScaleUp({ currentInstances: 3, cpuUsage: 95, costPerInstance: 2 })).toBe(
      false,
    );
    expect(events).toHaveLength(1);
    await expect(
      o.shouldScaleUp({ currentInstances: 3, cpuUsage: 150, costPerInstance: 2 }),
    ).rejects.toThrow(ValidationError);
    await expect(
      o.shouldScaleUp({ currentInstances: 3, cpuUsage: -1, costPerInstance: 2 }),
    ).rejects.toThrow(ValidationError);
  });

  it('optimizeInstanceTypes: the seed mapping', () => {
    const o = new CostOptimizer({});
    expect(o.optimizeInstanceTypes('cpu_intensive')).toBe('c5.xlarge');
    expect(o.optimizeInstanceTypes('memory_intensive')).toBe('r5.xlarge');
    expect(o.optimizeInstanceTypes('general')).toBe('t3.xlarge');
  });

  it('desiredReplicas: HPA formula, clamped to min/max and to the budget', async () => {
    const now = Date.UTC(2025, 0, 1, 10, 0, 0);
    const o = new CostOptimizer({ hourlyBudget: 100, now: () => now });
    expect(
      await o.desiredReplicas({
        current: 4,
        metric: 90,
        target: 60,
        min: 1,
        max: 20,
        costPerInstance: 1,
      }),
    ).toBe(6);
    expect(
      await o.desiredReplicas({
        current: 4,
        metric: 30,
        target: 60,
        min: 1,
        max: 20,
        costPerInstance: 1,
      }),
    ).toBe(2);
    expect(
      await o.desiredReplicas({
        current: 4,
        metric: 900,
        target: 60,
        min: 1,
        max: 20,
        costPerInstance: 1,
      }),
    ).toBe(20);
    expect(
      await o.desiredReplicas({
        current: 4,
        metric: 1,
        target: 60,
        min: 3,
        max: 20,
        costPerInstance: 1,
      }),
    ).toBe(3);
    const events: unknown[] = [];
    o.on('budgetExceeded', (e) => events.push(e));
    // $10/h each: the budget affords 10 in total.
    expect(
      await o.desiredReplicas({
        current: 4,
        metric: 600,
        target: 60,
        min: 1,
        max: 100,
        costPerInstance: 10,
      }),
    ).toBe(10);
    expect(events.length).toBeGreaterThan(0);
  });

  it('guard(fn) throws BudgetExceededError once the hour is spent', async () => {
    const o = new CostOptimizer({ hourlyBudget: 1 });
    let calls = 0;
    const ask = o.guard(async (q: string) => {
      calls++;
      return `answer to ${q}`;
    });
    await expect(ask('a')).resolves.toBe('answer to a');
    await o.recordSpend(1.5);
    await expect(ask('b')).rejects.toBeInstanceOf(BudgetExceededError);
    expect(calls).toBe(1);
  });

  it('bad input: negative spend, NaN -> ValidationError', async () => {
    const o = new CostOptimizer({ hourlyBudget: 10 });
    await expect(o.recordSpend(-1)).rejects.toThrow(ValidationError);
    await expect(o.recordSpend(Number.NaN)).rejects.toThrow(ValidationError);
  });
});

describe.each([
  ['redis', () => s.redisUrl as string | { nodes: { host: string; port: number }[] }],
  ['cluster', () => ({ nodes: s.clusterNodes })],
])('scaling API contract: CostOptimizer on %s', (_label, redis) => {
  it('instances sharing Redis see one total; a new hour starts at zero', async () => {
    let now = Date.UTC(2031, 4, 5, 7, 10);
    const name = uniquePrefix('c8').replace(/[^a-z0-9-]/gi, '');
    const a = new CostOptimizer({ hourlyBudget: 100, redis: redis(), name, now: () => now });
    const b = new CostOptimizer({ hourlyBudget: 100, redis: redis(), name, now: () => now });
    closers.push(
      () => a.close(),
      () => b.close(),
    );
    await a.recordSpend(30);
    await b.recordSpend(25);
    await b.recordLLMUsage({ model: 'gpt-4o', inputTokens: 1_000_000, outputTokens: 0 });
    expect(await a.currentSpend()).toBeCloseTo(57.5, 6);
    expect(await b.currentSpend()).toBeCloseTo(57.5, 6);
    // a sees b's spend when deciding: 57.5 + 50 for the rest of the hour (50 min ~ 41.7) fits; 60 does not.
    expect(await a.shouldScaleUp({ currentInstances: 2, cpuUsage: 90, costPerInstance: 50 })).toBe(
      true,
    );
    expect(await a.shouldScaleUp({ currentInstances: 2, cpuUsage: 90, costPerInstance: 60 })).toBe(
      false,
    );
    now = Date.UTC(2031, 4, 5, 8, 0, 5);
    expect(await a.currentSpend()).toBe(0);
    expect(await b.currentSpend()).toBe(0);
  });
});
