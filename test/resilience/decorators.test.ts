/**
 * @circuit and @limit compiled both ways: TC39 decorators (TypeScript 5 without a flag: this file
 * itself, and a fixture through the TypeScript compiler) and legacy `experimentalDecorators`
 * (the same fixture compiled with the flag, as NestJS projects do).
 */
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../../src/core/errors.js';
import * as resilience from '../../src/resilience/index.js';
import {
  ConcurrencyLimiter,
  circuit,
  getCircuitBreaker,
  limit,
} from '../../src/resilience/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A fixture class using both decorators; `exports.run()` exercises it and reports what happened.
const FIXTURE = `
import { circuit, limit, ConcurrencyLimiter, CircuitOpenError, getCircuitBreaker } from 'azscale/resilience';

const limiter = new ConcurrencyLimiter({ concurrency: 2 });
let inFlight = 0;
let peak = 0;

class Client {
  calls = 0;
  constructor(public readonly healthy: boolean) {}

  @circuit({ failureThreshold: 2, recoveryTimeout: 60, name: __NAME__ })
  async callExternalService(x: number): Promise<number> {
    this.calls++;
    if (!this.healthy) throw new Error('down');
    return x + 1;
  }

  @circuit({ failureThreshold: 1, fallback: () => 'fallback' })
  async withFallback(): Promise<string> {
    throw new Error('nope');
  }

  @limit(limiter)
  async invoke(x: number): Promise<number> {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await new Promise((r) => setTimeout(r, 10));
    inFlight--;
    return x * 10;
  }
}

export async function run() {
  const good = new Client(true);
  const first = await good.callExternalService(1);
  const bad = new Client(false);
  const errors: string[] = [];
  for (let i = 0; i < 3; i++) {
    try { await bad.callExternalService(1); } catch (e) { errors.push(e instanceof CircuitOpenError ? 'open' : (e as Error).message); }
  }
  // A different instance shares the breaker: one breaker per decorated method, not per instance.
  let sharedRejected = false;
  try { await new Client(true).callExternalService(1); } catch (e) { sharedRejected = e instanceof CircuitOpenError; }
  const fb1 = await bad.withFallback().catch((e: Error) => e.message);
  const fb2 = await bad.withFallback();
  const limited = await Promise.all([1, 2, 3, 4, 5].map((x) => good.invoke(x)));
  return {
    first, errors, badCalls: bad.calls, sharedRejected, fb1, fb2, limited, peak,
    state: getCircuitBreaker(__NAME__)?.state,
    defaultNamed: getCircuitBreaker('Client.withFallback') !== undefined,
  };
}
`;

function compileAndRun(experimentalDecorators: boolean, name: string) {
  const source = FIXTURE.replaceAll('__NAME__', JSON.stringify(name));
  const out = ts.transpileModule(source, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.CommonJS,
      experimentalDecorators,
      useDefineForClassFields: !experimentalDecorators,
    },
    reportDiagnostics: true,
  });
  expect(out.diagnostics ?? []).toEqual([]);
  // The two compilations really differ: legacy emits __decorate, TC39 emits __esDecorate.
  expect(out.outputText).toContain(experimentalDecorators ? '__decorate(' : '__esDecorate(');
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  const req = (id: string) => {
    if (id === 'azscale/resilience') return { ...resilience, CircuitOpenError };
    throw new Error(`unexpected import ${id}`);
  };
  new Function('require', 'module', 'exports', out.outputText)(req, mod, mod.exports);
  return (mod.exports.run as () => Promise<Record<string, unknown>>)();
}

const expected = {
  first: 2,
  errors: ['down', 'down', 'open'],
  badCalls: 2,
  sharedRejected: true,
  fb1: 'nope',
  fb2: 'fallback',
  limited: [10, 20, 30, 40, 50],
  peak: 2,
  state: 'open',
  defaultNamed: true,
};

describe('decorators', () => {
  it('legacy experimentalDecorators compilation', async () => {
    expect(await compileAndRun(true, 'legacy.Client.call')).toEqual(expected);
  });

  it('TC39 compilation through the TypeScript compiler', async () => {
    // Both fixtures register 'Client.withFallback'; give this run a fresh registry entry.
    await getCircuitBreaker('Client.withFallback')?.close();
    expect(await compileAndRun(false, 'tc39.Client.call')).toEqual(expected);
  });

  it('TC39 decorators in this file (esbuild), default name ClassName.method, bare @circuit', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1 });
    class Service {
      n = 0;
      @circuit({ failureThreshold: 1 })
      async flaky(): Promise<number> {
        this.n++;
        throw new Error('x');
      }
      @circuit
      async plain(): Promise<string> {
        return 'plain';
      }
      @limit(limiter)
      async one(): Promise<number> {
        await sleep(5);
        return limiter.activeCount;
      }
      @limit(limiter)
      static async staticOne(): Promise<string> {
        return 'static';
      }
    }
    const s = new Service();
    await expect(s.flaky()).rejects.toThrow('x');
    await expect(s.flaky()).rejects.toBeInstanceOf(CircuitOpenError);
    expect(s.n).toBe(1);
    expect(getCircuitBreaker('Service.flaky')?.state).toBe('open');
    await expect(s.plain()).resolves.toBe('plain');
    expect(getCircuitBreaker('Service.plain')).toBeDefined();
    expect(await Promise.all([s.one(), s.one(), s.one()])).toEqual([1, 1, 1]);
    await expect(Service.staticOne()).resolves.toBe('static');
  });

  it('two classes with the same name get separate default-named breakers', async () => {
    const make = () => {
      class Twin {
        @circuit({ failureThreshold: 1 })
        async call(fail: boolean): Promise<string> {
          if (fail) throw new Error('x');
          return 'ok';
        }
      }
      return new Twin();
    };
    const a = make();
    const b = make();
    await a.call(true).catch(() => {});
    await expect(a.call(false)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(b.call(false)).resolves.toBe('ok');
    expect(getCircuitBreaker('Twin.call')?.state).toBe('open');
    expect(getCircuitBreaker('Twin.call#2')?.state).toBe('closed');
  });

  it('refuses to decorate a field', () => {
    expect(() => {
      class Bad {
        // @ts-expect-error: a field is not a method
        @circuit({}) value = 1;
      }
      return new Bad();
    }).toThrow(/applies to methods, not to a field/);
  });
});
