/**
 * Defect 2 of issue 13 and the "names looked up in tables" rule: prices, presets, instance types
 * and thresholds are own-property lookups, so prototype names are unknown names (a typed error
 * or the documented default), never NaN and never a budget bypass; money and token counts are
 * finite and >= 0 or a ValidationError; a spend total is never NaN.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isAzscaleError,
  isBudgetExceededError,
  isSerializationError,
  isValidationError,
} from '../../src/core/errors.js';
import {
  CostOptimizer,
  DEFAULT_PRICES,
  ScalingAdvisor,
  findModelPrice,
  getConfigForScale,
} from '../../src/scaling/index.js';
import { MAX_CATEGORIES, OTHER_CATEGORY } from '../../src/scaling/spend-store.js';
import { servers, uniquePrefix } from '../harness/env.js';

const PROTO_NAMES = [
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__defineGetter__',
  '__lookupSetter__',
];

async function failure(p: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e;
  }
  return undefined;
}

const backends = [
  { name: 'memory', redis: () => undefined },
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(backends)('CostOptimizer hostile input: $name', ({ redis }) => {
  const made: CostOptimizer[] = [];
  const mk = () => {
    const o = new CostOptimizer({
      hourlyBudget: 100,
      redis: redis(),
      prefix: uniquePrefix('cost'),
    } as never);
    made.push(o);
    return o;
  };
  afterAll(() => Promise.all(made.map((o) => o.close())));

  it.each(PROTO_NAMES)(
    'model and instance type %s are unknown: ValidationError, no NaN, no bypass',
    async (name) => {
      const o = mk();
      await o.recordSpend(150); // over the $100 budget
      const usage = await failure(
        o.recordLLMUsage({ model: name, inputTokens: 10, outputTokens: 10 }),
      );
      expect(isValidationError(usage), String(usage)).toBe(true);
      expect(
        isValidationError(
          await failure(() => o.estimateLLMCost({ model: name, inputTokens: 1, outputTokens: 1 })),
        ),
      ).toBe(true);
      expect(isValidationError(await failure(() => o.instancePrice(name)))).toBe(true);
      const scale = await failure(
        o.shouldScaleUp({ currentInstances: 1, cpuUsage: 95, instanceType: name }),
      );
      expect(isValidationError(scale), String(scale)).toBe(true);
      expect(await o.currentSpend()).toBe(150);
      expect(o.optimizeInstanceTypes(name)).toBe('t3.xlarge');
      // The guard still refuses: nothing turned the total into NaN.
      const guarded = await failure(o.guard(async () => 'ran')());
      expect(isBudgetExceededError(guarded)).toBe(true);
    },
  );

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1, 1e300, '5', null])(
    'recordSpend(%s) is a ValidationError and the total is unchanged',
    async (bad) => {
      const o = mk();
      await o.recordSpend(1.5);
      expect(isValidationError(await failure(o.recordSpend(bad as number)))).toBe(true);
      expect(await o.currentSpend()).toBe(1.5);
    },
  );

  it.each([
    { inputTokens: 1e308, outputTokens: 1e308 },
    { inputTokens: Number.NaN, outputTokens: 1 },
    { inputTokens: -5, outputTokens: 1 },
    { inputTokens: 1, outputTokens: Number.POSITIVE_INFINITY },
    { inputTokens: 1.5, outputTokens: 1 },
    { inputTokens: 1, outputTokens: 1, cachedInputTokens: 2 ** 60 },
  ])(
    'token counts %o are a ValidationError, never an infinite total or a raw ReplyError',
    async (t) => {
      const o = mk();
      const e = await failure(o.recordLLMUsage({ model: 'claude-opus-4', ...t }));
      expect(isValidationError(e), String(e)).toBe(true);
      const total = await o.currentSpend();
      expect(total).toBe(0);
    },
  );
});

describe.each(backends)('CostOptimizer bounds: $name', ({ redis }) => {
  it(`keeps at most ${MAX_CATEGORIES} categories per hour; the rest counts under '${OTHER_CATEGORY}'`, async () => {
    const o = new CostOptimizer({ redis: redis(), prefix: uniquePrefix('cost') } as never);
    try {
      const n = MAX_CATEGORIES + 50;
      await Promise.all(
        Array.from({ length: n }, (_, i) => o.recordSpend(1, { category: `tenant-${i}` })),
      );
      const cats = await o.spendByCategory();
      expect(Object.keys(cats).length).toBeLessThanOrEqual(MAX_CATEGORIES + 1);
      expect(Object.values(cats).reduce((a, b) => a + b, 0)).toBeCloseTo(n, 6);
      expect(await o.currentSpend()).toBeCloseTo(n, 6);
    } finally {
      await o.close();
    }
  });

  it.each([Number.NaN, 100, 11 * 365 * 86_400])('bucketTtl %s is a ValidationError', (ttl) => {
    expect(isValidationError(failureSync(() => new CostOptimizer({ bucketTtl: ttl })))).toBe(true);
  });
});

describe.each([
  { name: 'redis', cluster: false },
  { name: 'cluster', cluster: true },
])('a corrupt spend total: $name', ({ cluster }) => {
  it('is a SerializationError, and guard() refuses rather than letting every call through', async () => {
    const prefix = uniquePrefix('cost');
    const raw = cluster ? new Redis.Cluster(servers().clusterNodes) : new Redis(servers().redisUrl);
    const redis = cluster ? { nodes: servers().clusterNodes } : servers().redisUrl;
    const o = new CostOptimizer({ hourlyBudget: 100, redis, prefix, name: 'corrupt' });
    try {
      await o.recordSpend(1);
      const key = (o as unknown as { store: { keyFor(h: number): string } }).store.keyFor(
        Math.floor(Date.now() / 3_600_000),
      );
      await raw.set(key, 'not-a-number', 'EX', 60);
      expect(isSerializationError(await failure(o.currentSpend()))).toBe(true);
      let ran = false;
      const e = await failure(
        o.guard(async () => {
          ran = true;
        })(),
      );
      expect(isAzscaleError(e)).toBe(true);
      expect(ran).toBe(false);
    } finally {
      await o.close();
      raw.disconnect();
    }
  });
});

describe('table lookups elsewhere in scaling', () => {
  it.each(PROTO_NAMES)('%s is not a model, a preset or a threshold', (name) => {
    expect(findModelPrice(DEFAULT_PRICES.models, name)).toBeUndefined();
    expect(findModelPrice({ 'gpt-x': { input: 1, output: 1 } }, name)).toBeUndefined();
    expect(isValidationError(failureSync(() => getConfigForScale(name)))).toBe(true);
    const thresholds = JSON.parse(`{${JSON.stringify(name)}: 0.5}`);
    expect(isValidationError(failureSync(() => new ScalingAdvisor({ thresholds })))).toBe(true);
  });

  it('a spend category named __proto__ is an ordinary category', async () => {
    const o = new CostOptimizer({ hourlyBudget: 100 });
    await o.recordSpend(2, { category: '__proto__' });
    const cats = await o.spendByCategory();
    expect(Object.hasOwn(cats, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(cats)).toBe(Object.prototype);
  });
});

function failureSync(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
