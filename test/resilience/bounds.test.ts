/**
 * Defect 12 of issue 13 (resilience parts): MemoryRateStore and the breaker's per-name
 * generations were never pruned; registries keyed by user-supplied names grew without bound.
 * Each internal map is now pruned or bounded; these tests show the bound, and prototype names
 * are ordinary names in every registry.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { isLimitExceededError } from '../../src/core/errors.js';
import {
  ConcurrencyLimiter,
  MAX_REGISTERED_BREAKERS,
  MemoryBreakerStore,
  MemoryRateStore,
  MemorySemaphoreStore,
  RateLimiter,
  circuitBreaker,
  closeCircuitBreakers,
  exportCircuitStates,
  getCircuitBreaker,
  listCircuitBreakers,
  sharedHttpPool,
} from '../../src/resilience/index.js';

const PROTO_NAMES = [
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
];

// Every Map held directly by an object: what a store keeps per name.
function mapSizes(o: object): number {
  let n = 0;
  for (const v of Object.values(o)) if (v instanceof Map) n += v.size;
  return n;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryRateStore is pruned', () => {
  it('keeps only keys with live state, not every key ever used', async () => {
    const store = new MemoryRateStore();
    const cost = { requestIntervalMs: 1, tokenIntervalMs: 0, tokens: 0, periodMs: 60_000 };
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 2000; i++) store.takeSync(`k${round}:${i}`, cost);
      await new Promise((r) => setTimeout(r, 5)); // each key's 1 ms of budget is back
    }
    expect(mapSizes(store)).toBeLessThan(4000);
    expect(store.size).toBe(0);
  });

  it('drops a pause once it is over, and a pause is capped', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new MemoryRateStore();
    await store.pause('a', 1e300);
    await store.pause('b', 1000);
    expect(store.size).toBe(2);
    vi.setSystemTime(Date.now() + 2000);
    expect(store.size).toBe(1);
    vi.setSystemTime(Date.now() + 11 * 365 * 86_400_000);
    expect(store.size).toBe(0);
  });
});

describe('MemoryBreakerStore keeps no per-name history', () => {
  it('after 5000 names opened and closed, nothing is held per name', async () => {
    const store = new MemoryBreakerStore();
    for (let i = 0; i < 5000; i++) {
      const name = `b${i}`;
      await store.open(name, 0);
      const t = await store.tryTrial(name, 'me', 1000);
      expect(t.granted).toBe(true);
      await store.settleTrial(name, 'me', true, 1000);
    }
    expect(mapSizes(store)).toBe(0);
  });

  it('an open breaker nobody settles is dropped 10 minutes after its open period, like the Redis key', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new MemoryBreakerStore();
    const before = (await store.read('x')).generation;
    for (let i = 0; i < 3000; i++) await store.open(`n${i}`, 1000);
    expect(store.size).toBe(3000);
    vi.setSystemTime(Date.now() + 11 * 60_000);
    expect(store.size).toBe(0);
    // Generations still grow: a reader never mistakes a new open for an old reply.
    const v = await store.open('n0', 1000);
    expect(v.generation).toBeGreaterThan(before);
  });
});

describe('MemorySemaphoreStore drops idle semaphores', () => {
  it('a waiter that stopped polling and expired leases leave nothing behind', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = new MemorySemaphoreStore();
    for (let i = 0; i < 2000; i++) {
      await store.acquire(`s${i}`, 'l1', 1, 1, 1000);
      await store.acquire(`s${i}`, 'l2', 1, 1, 1000, { id: 'w', more: false, staleMs: 2000 });
    }
    expect(store.size).toBe(2000);
    vi.setSystemTime(Date.now() + 5000);
    expect(store.size).toBe(0);
  });
});

describe('registries', () => {
  afterAll(() => closeCircuitBreakers());

  it.each(PROTO_NAMES)('a breaker named %s is an ordinary entry', async (name) => {
    expect(getCircuitBreaker(name)).toBeUndefined();
    const b = circuitBreaker({ name });
    expect(getCircuitBreaker(name)).toBe(b);
    const states = exportCircuitStates();
    expect(Object.hasOwn(states, name)).toBe(true);
    expect(states[name]?.name).toBe(name);
    expect(Object.getPrototypeOf(states)).toBe(Object.prototype);
    await b.close();
    expect(getCircuitBreaker(name)).toBeUndefined();
  });

  it(`holds at most MAX_REGISTERED_BREAKERS (${MAX_REGISTERED_BREAKERS}) breakers`, async () => {
    await closeCircuitBreakers();
    for (let i = 0; i < MAX_REGISTERED_BREAKERS; i++) circuitBreaker({ name: `r${i}` });
    let err: unknown;
    try {
      circuitBreaker({ name: 'one-more' });
    } catch (e) {
      err = e;
    }
    expect(isLimitExceededError(err)).toBe(true);
    expect(circuitBreaker({ name: 'r5' })).toBe(getCircuitBreaker('r5'));
    expect(listCircuitBreakers().length).toBe(MAX_REGISTERED_BREAKERS);
    await closeCircuitBreakers();
    expect(listCircuitBreakers().length).toBe(0);
  });

  it.each(PROTO_NAMES)('an HTTP pool named %s is its own pool', async (name) => {
    const a = sharedHttpPool({ name });
    expect(sharedHttpPool({ name })).toBe(a);
    expect(sharedHttpPool({ name: `${name}-other` })).not.toBe(a);
    await a.close();
    await sharedHttpPool({ name: `${name}-other` }).close();
  });

  it.each(PROTO_NAMES)('limiter keys named %s keep their own budgets', async (name) => {
    const store = new MemoryRateStore();
    const a = new RateLimiter({ store, key: name, requestsPerMinute: 1, maxWait: 0 });
    const b = new RateLimiter({ store, key: `${name}x`, requestsPerMinute: 1, maxWait: 0 });
    expect((await a.tryAcquire()).allowed).toBe(true);
    expect((await a.tryAcquire()).allowed).toBe(false);
    expect((await b.tryAcquire()).allowed).toBe(true);
    const sem = new MemorySemaphoreStore();
    const l = new ConcurrencyLimiter({ concurrency: 1, store: sem, key: name });
    expect(await l.run(async () => 'ran')).toBe('ran');
    await Promise.all([a.close(), b.close(), l.close()]);
  });
});
