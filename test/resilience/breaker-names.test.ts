/**
 * Defect 5 of issue 13: an unnamed shared breaker was named after its function, so two anonymous
 * functions shared one Redis key and one opening rejected the other. A shared breaker (redis or
 * store) now needs an explicit name; unnamed breakers are private to their wrapper.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { isCircuitOpenError, isValidationError } from '../../src/core/errors.js';
import {
  CircuitBreaker,
  MemoryBreakerStore,
  circuit,
  closeCircuitBreakers,
} from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const boom = () => Promise.reject(new Error('down'));

describe.each([
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
  { name: 'store', redis: () => undefined },
])('shared breakers need a name: $name', ({ name, redis }) => {
  afterAll(() => closeCircuitBreakers());
  const shared = () =>
    name === 'store'
      ? { store: new MemoryBreakerStore() }
      : { redis: redis(), prefix: uniquePrefix('brk') };

  it('circuit(anonymous fn, shared) is a ValidationError naming `name`', () => {
    for (const make of [
      () => circuit(async () => 1, { ...shared(), failureThreshold: 1 }),
      () => circuit(function fetchQuote() {}, shared()),
      () => new CircuitBreaker(shared()),
      () => circuit(shared()),
    ]) {
      const e = thrown(make);
      expect(isValidationError(e), String(e)).toBe(true);
      expect((e as { option?: string }).option).toBe('name');
    }
  });

  it('two named breakers on one backend keep their own state', async () => {
    const o = { ...shared(), failureThreshold: 1, syncInterval: 0.05, recoveryTimeout: 60 };
    const a = circuit(boom, { ...o, name: uniquePrefix('a') });
    const b = circuit(async () => 'ok', { ...o, name: uniquePrefix('b') });
    await expect(a()).rejects.toThrow('down');
    expect(isCircuitOpenError(await a().catch((e: unknown) => e))).toBe(true);
    await a.breaker.sync();
    await b.breaker.sync();
    expect(b.state).toBe('closed');
    expect(await b()).toBe('ok');
    await a.breaker.close();
    await b.breaker.close();
  });
});

describe('unnamed breakers are private to their wrapper', () => {
  it('two anonymous functions do not share state', async () => {
    const a = circuit(boom, { failureThreshold: 1 });
    const b = circuit(async () => 'ok', { failureThreshold: 1 });
    await expect(a()).rejects.toThrow('down');
    expect(a.state).toBe('open');
    expect(b.state).toBe('closed');
    expect(await b()).toBe('ok');
  });
});
