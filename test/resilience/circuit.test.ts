import { afterAll, describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ValidationError,
  isCircuitOpenError,
  isValidationError,
} from '../../src/core/errors.js';
import {
  CircuitBreaker,
  MemoryBreakerStore,
  circuit,
  circuitBreaker,
  closeCircuitBreakers,
  exportCircuitStates,
  getCircuitBreaker,
} from '../../src/resilience/index.js';
import { uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const boom = (msg = 'boom') => {
  throw new Error(msg);
};

afterAll(() => closeCircuitBreakers());

describe('circuit (function form, in memory)', () => {
  it('opens after failureThreshold consecutive failures, then rejects without calling', async () => {
    let calls = 0;
    const guarded = circuit(
      async () => {
        calls++;
        throw new Error('down');
      },
      { failureThreshold: 3, recoveryTimeout: 60 },
    );
    for (let i = 0; i < 3; i++) await expect(guarded()).rejects.toThrow('down');
    expect(guarded.breaker.state).toBe('open');
    const e = await guarded().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CircuitOpenError);
    expect(isCircuitOpenError(e)).toBe(true);
    expect((e as CircuitOpenError).cause).toBeInstanceOf(Error);
    expect(calls).toBe(3);
  });

  it('a success resets the consecutive count', async () => {
    let fail = true;
    const guarded = circuit(
      async () => {
        if (fail) throw new Error('x');
        return 'ok';
      },
      { failureThreshold: 2 },
    );
    await expect(guarded()).rejects.toThrow();
    fail = false;
    await expect(guarded()).resolves.toBe('ok');
    fail = true;
    await expect(guarded()).rejects.toThrow();
    expect(guarded.breaker.state).toBe('closed');
  });

  it('goes half-open after recoveryTimeout; a good trial closes it, a bad one reopens it', async () => {
    let healthy = false;
    const guarded = circuit(
      async (x: number) => {
        if (!healthy) throw new Error('down');
        return x * 2;
      },
      { failureThreshold: 1, recoveryTimeout: 0.15 },
    );
    await expect(guarded(1)).rejects.toThrow('down');
    await expect(guarded(1)).rejects.toBeInstanceOf(CircuitOpenError);
    await sleep(200);
    await expect(guarded(1)).rejects.toThrow('down'); // the trial ran and failed
    expect(guarded.breaker.state).toBe('open');
    await sleep(200);
    healthy = true;
    await expect(guarded(21)).resolves.toBe(42);
    expect(guarded.breaker.state).toBe('closed');
  });

  it('calls fallback with the arguments instead of throwing when open', async () => {
    const guarded = circuit(async (q: string): Promise<string> => boom(q), {
      failureThreshold: 1,
      fallback: (q: string) => `cached:${q}`,
    });
    await expect(guarded('a')).rejects.toThrow('a');
    await expect(guarded('b')).resolves.toBe('cached:b');
  });

  it('isFailure: errors it rejects pass through and never open the breaker', async () => {
    class BadRequest extends Error {}
    const guarded = circuit(
      async () => {
        throw new BadRequest('400');
      },
      { failureThreshold: 2, isFailure: (e) => !(e instanceof BadRequest) },
    );
    for (let i = 0; i < 5; i++) await expect(guarded()).rejects.toBeInstanceOf(BadRequest);
    expect(guarded.breaker.state).toBe('closed');
  });

  it('emits onOpen / onHalfOpen / onClose; disposers stop them', async () => {
    let healthy = false;
    const guarded = circuit(
      async () => {
        if (!healthy) throw new Error('down');
      },
      { failureThreshold: 1, recoveryTimeout: 0.1 },
    );
    const seen: string[] = [];
    const b = guarded.breaker;
    const d1 = b.onOpen(() => seen.push('open'));
    b.onHalfOpen(() => seen.push('half'));
    b.onClose(() => seen.push('close'));
    await guarded().catch(() => {});
    await sleep(150);
    healthy = true;
    await guarded();
    expect(seen).toEqual(['open', 'half', 'close']);
    // The same events and state are on the guarded function itself.
    expect(guarded.state).toBe('closed');
    const viaFn: string[] = [];
    const d2 = guarded.onOpen(() => viaFn.push('open'));
    d1();
    healthy = false;
    await guarded().catch(() => {});
    expect(b.state).toBe('open');
    expect(seen).toEqual(['open', 'half', 'close']);
    expect(viaFn).toEqual(['open']);
    expect(guarded.exportState().state).toBe('open');
    d2();
  });

  it('keeps breakers in a registry by name: same name, same breaker', async () => {
    const name = uniquePrefix('reg');
    const a = circuit(async () => boom(), { name, failureThreshold: 2 });
    const b = circuit(async () => 'fine', { name, failureThreshold: 99 });
    expect(a.breaker).toBe(b.breaker);
    expect(getCircuitBreaker(name)).toBe(a.breaker);
    await a().catch(() => {});
    await a().catch(() => {});
    await expect(b()).rejects.toBeInstanceOf(CircuitOpenError);
    expect(exportCircuitStates()[name]?.state).toBe('open');
  });

  it('exports its state and restores it into a new breaker', async () => {
    const b1 = new CircuitBreaker({ name: 'export-me', failureThreshold: 1, recoveryTimeout: 60 });
    await b1.execute(async () => boom()).catch(() => {});
    const snap = JSON.parse(JSON.stringify(b1.toJSON()));
    expect(snap.state).toBe('open');
    const b2 = new CircuitBreaker({
      name: 'export-me',
      failureThreshold: 1,
      recoveryTimeout: 60,
      initialState: snap,
    });
    expect(b2.state).toBe('open');
    await expect(b2.execute(async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('isolate holds it open until disposed; reset closes it', async () => {
    const b = new CircuitBreaker({ failureThreshold: 1 });
    const release = b.isolate();
    expect(b.state).toBe('isolated');
    await expect(b.execute(async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
    release();
    await expect(b.execute(async () => 1)).resolves.toBe(1);
    await b.execute(async () => boom()).catch(() => {});
    expect(b.state).toBe('open');
    await b.reset();
    expect(b.state).toBe('closed');
  });

  it('rate breaker: opens on the failure rate once the minimum volume is reached', async () => {
    let n = 0;
    const guarded = circuit(
      async () => {
        n++;
        if (n % 3 !== 0) throw new Error('two thirds of calls fail');
      },
      { breaker: 'rate', failureRate: 0.5, window: 10, minimumCalls: 6, recoveryTimeout: 60 },
    );
    // Below the minimum volume nothing opens, whatever the rate.
    for (let i = 0; i < 4; i++) await guarded().catch(() => {});
    expect(guarded.breaker.state).toBe('closed');
    for (let i = 0; i < 10 && guarded.breaker.state === 'closed'; i++)
      await guarded().catch(() => {});
    expect(guarded.breaker.state).toBe('open');
  });

  it('count breaker: opens on the failure rate of the last calls', async () => {
    const guarded = circuit(async (fail: boolean) => (fail ? boom() : 1), {
      breaker: 'count',
      failureRate: 0.5,
      windowSize: 10,
      minimumCalls: 4,
    });
    await guarded(true).catch(() => {});
    await guarded(false);
    await guarded(true).catch(() => {});
    // 2 of 3 failed, but the minimum volume (4) is not reached.
    expect(guarded.breaker.state).toBe('closed');
    await guarded(true).catch(() => {});
    expect(guarded.breaker.state).toBe('open');
  });

  it('keeps `this` and arguments', async () => {
    const obj = {
      base: 10,
      add: circuit(async function (this: { base: number }, x: number) {
        return this.base + x;
      }),
    };
    await expect(obj.add(5)).resolves.toBe(15);
  });
});

describe('circuit with a shared store (in process)', () => {
  it('a second breaker with the same name and store sees the first one open it', async () => {
    const store = new MemoryBreakerStore();
    const name = uniquePrefix('shared');
    const a = new CircuitBreaker({
      name,
      store,
      failureThreshold: 2,
      recoveryTimeout: 30,
      syncInterval: 0.05,
    });
    const b = new CircuitBreaker({
      name,
      store,
      failureThreshold: 2,
      recoveryTimeout: 30,
      syncInterval: 0.05,
    });
    try {
      const opened = new Promise<void>((r) => b.onOpen(() => r()));
      await a.execute(async () => boom()).catch(() => {});
      await a.execute(async () => boom()).catch(() => {});
      await opened;
      expect(b.state).toBe('open');
      let ran = false;
      await expect(
        b.execute(async () => {
          ran = true;
        }),
      ).rejects.toBeInstanceOf(CircuitOpenError);
      expect(ran).toBe(false);
      await b.reset();
      await a.sync();
      expect(a.state).toBe('closed');
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('only one of several instances runs the half-open trial', async () => {
    const store = new MemoryBreakerStore();
    const name = uniquePrefix('trial');
    const breakers = Array.from(
      { length: 4 },
      () =>
        new CircuitBreaker({
          name,
          store,
          failureThreshold: 1,
          recoveryTimeout: 0.1,
          syncInterval: 0.02,
        }),
    );
    try {
      await (breakers[0] as CircuitBreaker).execute(async () => boom()).catch(() => {});
      await sleep(150);
      let trials = 0;
      const results = await Promise.allSettled(
        breakers.map((b) =>
          b.execute(async () => {
            trials++;
            await sleep(50);
            return 'ok';
          }),
        ),
      );
      expect(trials).toBe(1);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const b of breakers) await b.sync();
      expect(breakers.map((b) => b.state)).toEqual(['closed', 'closed', 'closed', 'closed']);
    } finally {
      await Promise.all(breakers.map((b) => b.close()));
    }
  });
});

describe('circuit bad input', () => {
  it('throws ValidationError naming the option', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ failureThreshold: 0 }, 'failureThreshold'],
      [{ failureThreshold: Number.NaN }, 'failureThreshold'],
      [{ failureThreshold: 1.5 }, 'failureThreshold'],
      [{ recoveryTimeout: -1 }, 'recoveryTimeout'],
      [{ recoveryTimeout: Number.POSITIVE_INFINITY }, 'recoveryTimeout'],
      [{ breaker: 'sometimes' }, 'breaker'],
      [{ failureRate: 1.5 }, 'failureRate'],
      [{ failureRate: 1 }, 'failureRate'],
      [{ fallback: 'nope' }, 'fallback'],
      [{ isFailure: 1 }, 'isFailure'],
      [{ name: '' }, 'name'],
      [{ redis: 42 }, 'redis'],
    ];
    for (const [opts, option] of cases) {
      let err: unknown;
      try {
        circuit(async () => 1, opts as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(opts)).toBe(true);
      expect((err as ValidationError).option, JSON.stringify(opts)).toBe(option);
    }
  });

  it('rejects a non-function, a non-object options value, and bad decorator options at definition', () => {
    expect(() => circuit(42 as never)).toThrow(ValidationError);
    expect(() => circuit('x' as never)).toThrow(ValidationError);
    expect(() => circuit(async () => 1, 'fast' as never)).toThrow(ValidationError);
    expect(() => circuit({ failureThreshold: -3 })).toThrow(ValidationError);
    expect(() => circuitBreaker({ name: 5 as never })).toThrow(ValidationError);
  });
});
