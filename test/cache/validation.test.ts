/** Bad input gets typed errors that name the option; nothing reaches the backend. */
import { describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import {
  isClosedError,
  isSerializationError,
  isValidationError,
  isValueTooLargeError,
} from '../../src/core/errors.js';

async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('DistributedCache bad input', () => {
  it('constructor options', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ ttl: 0 }, 'ttl'],
      [{ ttl: -5 }, 'ttl'],
      [{ ttl: Number.NaN }, 'ttl'],
      [{ ttl: '60' }, 'ttl'],
      [{ backendTimeout: 0 }, 'backendTimeout'],
      [{ onBackendError: 'ignore' }, 'onBackendError'],
      [{ local: 'yes' }, 'local'],
      [{ local: { max: 0 } }, 'local.max'],
      [{ local: { ttl: -1 } }, 'local.ttl'],
      [{ circuit: { threshold: 1.5 } }, 'circuit.threshold'],
      [{ circuit: { halfOpenAfter: 0 } }, 'circuit.halfOpenAfter'],
      [{ lock: { ttl: 0 } }, 'lock.ttl'],
      [{ lock: 'on' }, 'lock'],
      [{ prefix: 42 }, 'prefix'],
      [{ prefix: 'a\nb' }, 'prefix'],
      [{ redis: 'http://localhost' }, 'redis'],
      [{ redis: 42 }, 'redis'],
      [{ redis: { nodes: [] } }, 'redis.nodes'],
      [{ invalidation: 'yes' }, 'invalidation'],
      [{ maxValueBytes: 0 }, 'maxValueBytes'],
      [{ store: {}, redis: 'redis://x' }, 'store'],
    ];
    for (const [opts, option] of bad) {
      let err: unknown;
      try {
        new DistributedCache(opts as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(opts)).toBe(true);
      expect((err as { option?: string }).option, JSON.stringify(opts)).toBe(option);
    }
  });

  it('keys, values, ttls and loaders', async () => {
    const c = new DistributedCache({ maxValueBytes: 100 });
    const cases: [() => unknown, string][] = [
      [() => c.get(''), 'key'],
      [() => c.get(42 as never), 'key'],
      [() => c.get('a\u0000b'), 'key'],
      [() => c.get('x'.repeat(513)), 'key'],
      [() => c.set('', 'v'), 'key'],
      [() => c.set('k', 42 as never), 'value'],
      [() => c.set('k', { a: 1 } as never), 'value'],
      [() => c.set('k', null as never), 'value'],
      [() => c.set('k', 'v', 0), 'ttl'],
      [() => c.set('k', 'v', -1), 'ttl'],
      [() => c.set('k', 'v', Number.POSITIVE_INFINITY), 'ttl'],
      [() => c.getBatch('k' as never), 'keys'],
      [() => c.getBatch(['ok', '']), 'keys[1]'],
      [() => c.setBatch([['k', 1 as never]]), 'value'],
      [() => c.setBatch([['', 'v']]), 'entries[0] key'],
      [() => c.setBatch(5 as never), 'entries'],
      [() => c.setBatch([['k', 'v']], 0), 'ttl'],
      [() => c.getOrSet('k', 'nope' as never), 'loader'],
      [() => c.getOrSet('k', async () => 5 as never), 'loader'],
      [() => c.getOrSet('k', async () => 'v', { ttl: 0 }), 'ttl'],
      [() => c.getOrSet('k', async () => 'v', 'x' as never), 'ttl'],
      [() => c.delete(''), 'key'],
      [() => c.getOrSet('k', async () => 'v', 60, 'x' as never), 'options'],
      [() => c.getOrSet('k', async () => 'v', { ttl: 5 }, { lock: true }), 'ttl'],
      [() => c.getOrSet('k', async () => 'v', 60, { lock: { ttl: -1 } }), 'lock.ttl'],
    ];
    for (const [fn, option] of cases) {
      const e = await errorOf(fn);
      expect(isValidationError(e), `${fn}`).toBe(true);
      expect((e as { option?: string }).option, `${fn}`).toBe(option);
    }
    // Oversized values: ValueTooLargeError (a ValidationError and a SerializationError).
    const big = 'x'.repeat(101);
    for (const fn of [
      () => c.set('k', big),
      () => c.setJSON('k', big),
      () => c.getOrSet('k2', async () => big),
    ]) {
      const e = await errorOf(fn);
      expect(isValueTooLargeError(e)).toBe(true);
      expect(isSerializationError(e)).toBe(true);
    }
    expect(await c.get('k')).toBeNull();
    expect(await c.get('k2')).toBeNull();
    // Values JSON cannot hold.
    expect(isSerializationError(await errorOf(() => c.setJSON('k', 10n)))).toBe(true);
    expect(isSerializationError(await errorOf(() => c.getOrSetJSON('k', () => 10n)))).toBe(true);
    // Unicode is fine; control characters in values too (only keys are restricted).
    await c.set('ключ ✓', 'a\u0000b');
    expect(await c.get('ключ ✓')).toBe('a\u0000b');
  });

  it('calls after close() get ClosedError', async () => {
    const c = new DistributedCache();
    await c.set('k', 'v');
    await c.close();
    await c.close();
    for (const fn of [
      () => c.get('k'),
      () => c.set('k', 'v'),
      () => c.getBatch(['k']),
      () => c.getOrSet('k', () => 'v'),
    ]) {
      expect(isClosedError(await errorOf(fn))).toBe(true);
    }
  });
});
