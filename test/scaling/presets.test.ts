import { describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  DEFAULT_MAX_WORKERS,
  ResourceConfig,
  calculateWorkers,
  getConfigForScale,
} from '../../src/scaling/index.js';

// The seed's config/resource_config.py, verbatim.
const SEED = {
  SMALL: {
    workers: 2,
    cpu_limit: '1',
    memory_limit: '2Gi',
    llm_concurrent_requests: 5,
    cache_size_mb: 500,
  },
  MEDIUM: {
    workers: 4,
    cpu_limit: '2',
    memory_limit: '4Gi',
    llm_concurrent_requests: 10,
    cache_size_mb: 2000,
  },
  LARGE: {
    workers: 8,
    cpu_limit: '4',
    memory_limit: '8Gi',
    llm_concurrent_requests: 20,
    cache_size_mb: 4000,
  },
  XLARGE: {
    workers: 16,
    cpu_limit: '8',
    memory_limit: '16Gi',
    llm_concurrent_requests: 50,
    cache_size_mb: 8000,
  },
} as const;

function expectValidation(fn: () => unknown, option: string) {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    expect((e as { option?: string }).option).toBe(option);
    return;
  }
  throw new Error(`expected a ValidationError for ${option}`);
}

describe('ResourceConfig', () => {
  it.each(Object.keys(SEED) as (keyof typeof SEED)[])('%s has the seed values and keys', (name) => {
    const p = ResourceConfig[name];
    expect(p).toEqual(SEED[name]);
    expect(Object.keys(p).sort()).toEqual(Object.keys(SEED[name]).sort());
    expect(JSON.parse(JSON.stringify(p))).toEqual(SEED[name]);
    expect(p.cpuLimit).toBe(SEED[name].cpu_limit);
    expect(p.memoryLimit).toBe(SEED[name].memory_limit);
    expect(p.llmConcurrentRequests).toBe(SEED[name].llm_concurrent_requests);
    expect(p.cacheSizeMb).toBe(SEED[name].cache_size_mb);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(ResourceConfig)).toBe(true);
    expect(Object.isFrozen(ResourceConfig.LARGE)).toBe(true);
    expect(() => {
      (ResourceConfig.LARGE as { workers: number }).workers = 99;
    }).toThrow(TypeError);
    expect(ResourceConfig.LARGE.workers).toBe(8);
  });
});

describe('getConfigForScale', () => {
  it.each([
    ['small', 'SMALL'],
    ['Medium', 'MEDIUM'],
    ['large', 'LARGE'],
    ['LARGE', 'LARGE'],
    ['xLarge', 'XLARGE'],
  ] as const)('%s -> %s', (input, name) => {
    expect(getConfigForScale(input)).toBe(ResourceConfig[name]);
  });

  it('defaults to medium, as the seed', () => {
    expect(getConfigForScale()).toBe(ResourceConfig.MEDIUM);
  });

  it.each(['huge', '', ' large', 'x-large'])('rejects %j', (bad) => {
    expectValidation(() => getConfigForScale(bad), 'scale');
  });

  it('rejects a non-string', () => {
    expectValidation(() => getConfigForScale(3 as unknown as string), 'scale');
  });
});

describe('calculateWorkers', () => {
  const env = {};
  it.each([
    [{ cpus: 1 }, 2],
    [{ cpus: 4 }, 8],
    [{ cpus: 4, workload: 'io' as const }, 8],
    [{ cpus: 4, workload: 'cpu' as const }, 4],
    [{ cpus: 16 }, 32],
    [{ cpus: 64 }, 32], // capped at the seed's 32
    [{ cpus: 64, workload: 'cpu' as const }, 32],
    [{ cpus: 8, maxWorkers: 12 }, 12],
    [{ cpus: 4, ioMultiplier: 4 }, 16],
  ])('%j -> %i', (opts, expected) => {
    expect(calculateWorkers({ ...opts, env })).toBe(expected);
  });

  it('defaults to 2x the CPUs of this machine, capped at 32', async () => {
    const { availableParallelism } = await import('node:os');
    expect(DEFAULT_MAX_WORKERS).toBe(32);
    expect(calculateWorkers({ env })).toBe(Math.min(32, availableParallelism() * 2));
  });

  it('honours MAX_WORKERS from the environment', () => {
    expect(calculateWorkers({ cpus: 8, env: { MAX_WORKERS: '5' } })).toBe(5);
    expect(calculateWorkers({ cpus: 64, env: { MAX_WORKERS: '100' } })).toBe(100);
    expect(calculateWorkers({ cpus: 8, env: { MAX_WORKERS: '' } })).toBe(16);
    // An explicit option wins over the environment.
    expect(calculateWorkers({ cpus: 8, maxWorkers: 3, env: { MAX_WORKERS: '5' } })).toBe(3);
  });

  it('reads process.env.MAX_WORKERS by default', () => {
    const old = process.env.MAX_WORKERS;
    process.env.MAX_WORKERS = '3';
    try {
      expect(calculateWorkers({ cpus: 8 })).toBe(3);
    } finally {
      if (old === undefined) delete process.env.MAX_WORKERS;
      else process.env.MAX_WORKERS = old;
    }
  });

  it.each([
    [{ cpus: 0 }, 'cpus'],
    [{ cpus: -2 }, 'cpus'],
    [{ cpus: 1.5 }, 'cpus'],
    [{ cpus: Number.NaN }, 'cpus'],
    [{ maxWorkers: 0 }, 'maxWorkers'],
    [{ workload: 'gpu' }, 'workload'],
    [{ ioMultiplier: 0 }, 'ioMultiplier'],
    [{ env: { MAX_WORKERS: 'lots' } }, 'MAX_WORKERS'],
    [{ env: { MAX_WORKERS: '-1' } }, 'MAX_WORKERS'],
    [{ env: { MAX_WORKERS: '2.5' } }, 'MAX_WORKERS'],
  ])('rejects %j naming %s', (opts, option) => {
    expectValidation(
      () => calculateWorkers({ cpus: 4, ...opts } as never),
      option.split(' ')[0] as string,
    );
  });
});
