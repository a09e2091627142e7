import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  CircuitBreaker,
  ConcurrencyLimiter,
  MemoryBreakerStore,
  MemoryRateStore,
  MemorySemaphoreStore,
  RateLimiter,
} from '../../src/resilience/index.js';
import { CostOptimizer, MemorySpendStore } from '../../src/scaling/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

// Each module through the one resolver: the same option means the same thing, and the same
// mistake gets the same ValidationError (option named, message `<Module>: <rule>`).
interface Closable {
  close(): Promise<void>;
}
const modules: {
  module: string;
  make: (o: Record<string, unknown>) => Closable;
  store: () => object;
}[] = [
  {
    module: 'CircuitBreaker',
    make: (o) => new CircuitBreaker({ name: 'resolver-test', ...o }),
    store: () => new MemoryBreakerStore(),
  },
  {
    module: 'ConcurrencyLimiter',
    make: (o) => new ConcurrencyLimiter({ concurrency: 2, ...o }),
    store: () => new MemorySemaphoreStore(),
  },
  {
    module: 'RateLimiter',
    make: (o) => new RateLimiter({ requestsPerMinute: 60, ...o }),
    store: () => new MemoryRateStore(),
  },
  {
    module: 'CostOptimizer',
    make: (o) => new CostOptimizer({ hourlyBudget: 10, ...o }),
    store: () => new MemorySpendStore(),
  },
];

const open: Closable[] = [];
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

function refusal(fn: () => unknown): { option: string | undefined; message: string } {
  try {
    open.push(fn() as Closable);
  } catch (e) {
    if (!isValidationError(e)) throw e;
    return { option: e.option, message: e.message };
  }
  throw new Error('expected a ValidationError');
}

describe.each(modules)('$module resolves its backend through resolveBackend', (m) => {
  it('refuses redis together with store (or its alias backend), naming the option', () => {
    const url = servers().redisUrl;
    expect(refusal(() => m.make({ redis: url, store: m.store() }))).toEqual({
      option: 'store',
      message: `${m.module}: give either redis or store, not both`,
    });
    expect(refusal(() => m.make({ redis: url, backend: m.store() }))).toEqual({
      option: 'backend',
      message: `${m.module}: give either redis or backend, not both`,
    });
    expect(refusal(() => m.make({ store: m.store(), backend: m.store() })).option).toBe('backend');
  });

  it('refuses a wrong type for connection and its aliases the same way', () => {
    expect(refusal(() => m.make({ connection: 5 }))).toEqual({
      option: 'connection',
      message: `${m.module}: connection must be an object of Redis connection options, received number 5`,
    });
    expect(refusal(() => m.make({ connection: {}, redisOptions: {} })).option).toBe('redisOptions');
    expect(refusal(() => m.make({ connection: { connectTimeout: -1 } })).option).toBe(
      'connectTimeout',
    );
    expect(refusal(() => m.make({ redis: 42 })).option).toBe('redis');
    expect(refusal(() => m.make({ redis: { sentinels: [{ host: 'h', port: 1 }] } })).option).toBe(
      'redis.name',
    );
  });

  it('refuses a store that is no store', () => {
    const r = refusal(() => m.make({ store: 'nope' }));
    expect(r.option).toMatch(/^store/);
  });

  it('never closes a client it was given', async () => {
    const mine = new Redis(servers().redisUrl);
    expect(await mine.ping()).toBe('PONG');
    const a = m.make({ redis: mine, prefix: uniquePrefix('resolver') });
    await a.close();
    expect(mine.status).toBe('ready');
    expect(await mine.ping()).toBe('PONG');
    await mine.quit();
  });
});
