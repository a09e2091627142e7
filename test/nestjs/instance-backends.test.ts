/**
 * The decorators' function-of-the-instance forms (TC39 decorators, this file's own compile; the
 * legacy form runs in module.test.ts): `@cached({ cache: (self) => self.cache })`,
 * `instanceKey`, `@limit((self) => self.limiter)`, `@limit({ limiter })`,
 * `@circuit({ breaker: (self) => self.breaker })`.
 */
import { describe, expect, it } from 'vitest';
import { DistributedCache, cached } from '../../src/cache/index.js';
import { CircuitBreaker, ConcurrencyLimiter, circuit, limit } from '../../src/resilience/index.js';

class Client {
  calls = 0;
  constructor(
    readonly region: string,
    readonly cache: DistributedCache,
  ) {}

  @cached({ cache: (self: Client) => self.cache })
  async shared(q: string): Promise<string> {
    this.calls++;
    return `${this.region}:${q}`;
  }

  @cached({ cache: (self: Client) => self.cache, instanceKey: (self: Client) => self.region })
  async perRegion(q: string): Promise<string> {
    this.calls++;
    return `${this.region}:${q}`;
  }
}

describe('@cached with a cache of the instance', () => {
  it('uses each instance’s cache; the key is shared across instances unless instanceKey says otherwise', async () => {
    const c1 = new DistributedCache({ prefix: 'c1:' });
    const c2 = new DistributedCache({ prefix: 'c2:' });
    const eu = new Client('eu', c1);
    const us = new Client('us', c1);
    const other = new Client('eu', c2);
    expect(await eu.shared('a')).toBe('eu:a');
    // Same cache, same key: the second instance gets the first one's result (documented).
    expect(await us.shared('a')).toBe('eu:a');
    expect(us.calls).toBe(0);
    // Another cache: its own entries.
    expect(await other.shared('a')).toBe('eu:a');
    expect(other.calls).toBe(1);
    expect(await c1.get('cached:Client.shared:v1:["a"]')).toBe('"eu:a"');
    expect(await c2.get('cached:Client.shared:v1:["a"]')).toBe('"eu:a"');
    // instanceKey: one entry per configuration.
    expect(await eu.perRegion('b')).toBe('eu:b');
    expect(await us.perRegion('b')).toBe('us:b');
    expect(await eu.perRegion('b')).toBe('eu:b');
    expect(eu.calls).toBe(2);
    expect(us.calls).toBe(1);
    expect(await c1.get('cached:Client.perRegion:v1:eu:["b"]')).toBe('"eu:b"');
  });

  it('rejects a cache function that returns something else, and bad instanceKey', async () => {
    class Bad {
      @cached({ cache: () => ({}) as DistributedCache })
      async f(): Promise<number> {
        return 1;
      }
      @cached({ cache: new DistributedCache(), instanceKey: () => '' })
      async g(): Promise<number> {
        return 1;
      }
    }
    await expect(new Bad().f()).rejects.toMatchObject({ code: 'AZS_VALIDATION' });
    await expect(new Bad().g()).rejects.toThrow(/instanceKey/);
    expect(() => cached({ instanceKey: 'x' as never })).toThrow(/instanceKey/);
  });
});

describe('@limit and @circuit with backends of the instance', () => {
  it('runs through the instance’s limiter (both spellings)', async () => {
    class Worker {
      running = 0;
      peak = 0;
      constructor(readonly limiter: ConcurrencyLimiter) {}
      @limit((self: Worker) => self.limiter)
      async a(): Promise<void> {
        this.running++;
        this.peak = Math.max(this.peak, this.running);
        await new Promise((r) => setTimeout(r, 20));
        this.running--;
      }
      @limit({ limiter: (self: Worker) => self.limiter })
      async b(): Promise<void> {
        this.running++;
        this.peak = Math.max(this.peak, this.running);
        await new Promise((r) => setTimeout(r, 20));
        this.running--;
      }
    }
    const one = new Worker(new ConcurrencyLimiter({ concurrency: 1 }));
    const three = new Worker(new ConcurrencyLimiter({ concurrency: 3 }));
    await Promise.all([1, 2, 3, 4].map(() => one.a()));
    await Promise.all([1, 2, 3, 4].map(() => three.a()));
    expect(one.peak).toBe(1);
    expect(three.peak).toBe(3);
    await Promise.all([1, 2, 3].map(() => one.b()));
    expect(one.peak).toBe(1);
    class Bad {
      @limit(() => 5 as never)
      async f(): Promise<void> {}
    }
    await expect(new Bad().f()).rejects.toThrow(/limiter/);
  });

  it('guards with the instance’s breaker', async () => {
    class Svc {
      constructor(readonly breaker: CircuitBreaker) {}
      @circuit({ breaker: (self: Svc) => self.breaker })
      async call(fail: boolean): Promise<string> {
        if (fail) throw new Error('down');
        return 'ok';
      }
    }
    const b1 = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 60 });
    const b2 = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 60 });
    const s1 = new Svc(b1);
    const s2 = new Svc(b2);
    await expect(s1.call(true)).rejects.toThrow('down');
    await expect(s1.call(true)).rejects.toThrow('down');
    expect(b1.state).toBe('open');
    await expect(s1.call(false)).rejects.toMatchObject({ code: 'AZS_CIRCUIT_OPEN' });
    // The other instance's breaker is untouched.
    expect(await s2.call(false)).toBe('ok');
    expect(b2.state).toBe('closed');
  });
});
