import { describe, expect, it } from 'vitest';
import {
  CircuitBreakerRegistry,
  LimitExceededError,
  ValidationError,
  circuit,
  circuitBreaker,
  defaultBreakerRegistry,
  getCircuitBreaker,
} from '../../src/resilience/index.js';

describe('CircuitBreakerRegistry', () => {
  it('keeps one breaker per name, apart from the default registry, and closes as one', async () => {
    const registry = new CircuitBreakerRegistry();
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new Error('down');
    };
    const a = circuit(fail, { name: 'reg-search', failureThreshold: 2, registry });
    const b = circuit(fail, { name: 'reg-search', registry });
    expect(a.breaker).toBe(b.breaker);
    expect(registry.find('reg-search')).toBe(a.breaker);
    expect(getCircuitBreaker('reg-search')).toBeUndefined();
    expect(defaultBreakerRegistry.has('reg-search')).toBe(false);
    await expect(a()).rejects.toThrow('down');
    await expect(b()).rejects.toThrow('down');
    // Opened by two failures across both wrappers: the third call never runs.
    await expect(a()).rejects.toMatchObject({ code: 'AZS_CIRCUIT_OPEN' });
    expect(calls).toBe(2);
    expect(Object.keys(registry.exportStates())).toEqual(['reg-search']);
    expect(registry.exportStates()['reg-search']?.state).toBe('open');
    await registry.close();
    expect(registry.size).toBe(0);
    // Usable again after close: a new breaker, closed.
    expect(registry.get({ name: 'reg-search' }).state).toBe('closed');
    await registry.close();
  });

  it('a closed breaker leaves its registry', async () => {
    const registry = new CircuitBreakerRegistry();
    const br = circuitBreaker({ name: 'reg-leave', registry });
    expect(registry.has('reg-leave')).toBe(true);
    await br.close();
    expect(registry.has('reg-leave')).toBe(false);
  });

  it('bounds its size and checks its options', async () => {
    const registry = new CircuitBreakerRegistry({ maxBreakers: 2 });
    registry.get({ name: 'one' });
    registry.get({ name: 'two' });
    expect(() => registry.get({ name: 'three' })).toThrow(LimitExceededError);
    expect(registry.get({ name: 'one' })).toBe(registry.find('one'));
    await registry.close();
    expect(() => new CircuitBreakerRegistry({ maxBreakers: 0 })).toThrow(ValidationError);
    expect(() => new CircuitBreakerRegistry({ maxBreakers: Number.NaN })).toThrow(/maxBreakers/);
    expect(() => circuit(async () => 1, { name: 'x', registry: {} as never })).toThrow(
      expect.objectContaining({ option: 'registry' }),
    );
  });
});
