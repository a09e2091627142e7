/**
 * `cached` in all three forms: TC39 decorators (this file is compiled by vitest without
 * experimentalDecorators), a fixture type-checked and compiled by the TypeScript API both with
 * and without `experimentalDecorators`, and the plain function wrapper.
 */
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as cacheModule from '../../src/cache/index.js';
import { DistributedCache, cached } from '../../src/cache/index.js';
import { isSerializationError, isValidationError } from '../../src/core/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('TC39 decorators (native compile)', () => {
  it('caches async methods by arguments, keeps `this`, ignores object key order', async () => {
    const cache = new DistributedCache({ prefix: 'tc39:' });
    class Service {
      calls = 0;
      constructor(readonly factor: number) {}
      @cached({ ttl: 60, cache })
      async expensiveOperation(a: string, b: { x: number; y: number }) {
        this.calls++;
        await sleep(5);
        return `${a}:${(b.x + b.y) * this.factor}`;
      }
    }
    const s = new Service(10);
    expect(await s.expensiveOperation('a', { x: 1, y: 2 })).toBe('a:30');
    expect(await s.expensiveOperation('a', { y: 2, x: 1 })).toBe('a:30');
    expect(s.calls).toBe(1);
    expect(await s.expensiveOperation('b', { x: 1, y: 2 })).toBe('b:30');
    expect(s.calls).toBe(2);
    // Key: class + method + version + arguments.
    expect(await cache.get('cached:Service.expensiveOperation:v1:["a",{"x":1,"y":2}]')).toBe(
      '"a:30"',
    );
    await cache.close();
  });

  it('works on sync and static methods, bare @cached, and shares entries with subclasses', async () => {
    const cache = new DistributedCache();
    let syncCalls = 0;
    let staticCalls = 0;
    class Base {
      @cached({ cache })
      square(n: number): Promise<number> | number {
        syncCalls++;
        return n * n;
      }
      @cached({ cache, version: 2 })
      static hello(name: string) {
        staticCalls++;
        return `hi ${name}`;
      }
    }
    class Child extends Base {}
    const r = new Base().square(4);
    expect(r).toBeInstanceOf(Promise);
    expect(await r).toBe(16);
    expect(await new Child().square(4)).toBe(16);
    expect(syncCalls).toBe(1);
    expect(await Base.hello('x')).toBe('hi x');
    expect(await Base.hello('x')).toBe('hi x');
    expect(staticCalls).toBe(1);
    expect(await cache.get('cached:Base.hello:v2:["x"]')).toBe('"hi x"');

    // Bare `@cached` (no call) is accepted at run time; its type is the options form's.
    const def = cached as unknown as <T>(v: T, c: ClassMethodDecoratorContext) => T;
    let bare = 0;
    class Bare {
      @def
      async m(x: number) {
        bare++;
        return x + 1;
      }
    }
    expect(await new Bare().m(1)).toBe(2);
    expect(await new Bare().m(1)).toBe(2);
    expect(bare).toBe(1);
  });

  it('refuses fields and unserializable arguments unless a key function is given', async () => {
    const cache = new DistributedCache();
    expect(() => {
      class Bad {
        // @ts-expect-error: a field is not a method
        @cached({ cache }) x = 1;
      }
      return Bad;
    }).toThrow(/methods only/);
    class S {
      @cached({ cache })
      async f(_v: unknown) {
        return 1;
      }
      @cached({ cache, key: (v: { id: number }) => `user:${v.id}` })
      async g(v: { id: number; conn: () => void }) {
        return v.id * 2;
      }
    }
    const s = new S();
    for (const bad of [
      () => {},
      10n,
      Symbol('s'),
      new Map(),
      (() => {
        const o: Record<string, unknown> = {};
        o.self = o;
        return o;
      })(),
    ]) {
      const e = await s.f(bad).catch((x: unknown) => x);
      expect(isSerializationError(e)).toBe(true);
    }
    expect(await s.g({ id: 21, conn: () => {} })).toBe(42);
    expect(await cache.get('user:21')).toBe('42');
  });
});

describe('function wrapper', () => {
  it('caches, single-flights concurrent misses and preserves `this`', async () => {
    const cache = new DistributedCache();
    let calls = 0;
    const slow = async function (this: { base: number } | undefined, n: number) {
      calls++;
      await sleep(30);
      return { n, base: this?.base ?? 0 };
    };
    const fast = cached(slow, { ttl: 60, cache });
    const ctx = { base: 7, fast };
    const rs = await Promise.all(Array.from({ length: 10 }, () => ctx.fast(1)));
    expect(rs.every((r) => r.n === 1 && r.base === 7)).toBe(true);
    expect(calls).toBe(1);
    expect(await ctx.fast(1)).toEqual({ n: 1, base: 7 });
    expect(calls).toBe(1);
    await cache.close();
  });

  it('uses the process-wide default cache, names anonymous functions by their source', async () => {
    let a = 0;
    let b = 0;
    const fa = cached(async (x: number) => {
      a++;
      return x + 1;
    });
    const fb = cached(async (x: number) => {
      b++;
      return x + 2;
    });
    expect(await fa(1)).toBe(2);
    expect(await fb(1)).toBe(3);
    expect(await fa(1)).toBe(2);
    expect([a, b]).toEqual([1, 1]);
    expect(cacheModule.getDefaultCache().backend).toBe('memory');
  });

  it('does not store undefined results; returns JSON-shaped values on hit and miss alike', async () => {
    const cache = new DistributedCache();
    let calls = 0;
    const f = cached(
      async (k: string) => {
        calls++;
        return k === 'none' ? undefined : { at: new Date(0) };
      },
      { cache },
    );
    expect(await f('none')).toBeUndefined();
    expect(await f('none')).toBeUndefined();
    expect(calls).toBe(2);
    expect(await f('d')).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    expect(await f('d')).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    expect(calls).toBe(3);
  });

  it('hashes long argument lists and bumps entries with version', async () => {
    const cache = new DistributedCache({ prefix: 'p:' });
    const f1 = cached(async (s: string) => s.length, { cache, name: 'len' });
    const f2 = cached(async (s: string) => -s.length, { cache, name: 'len', version: 2 });
    const long = 'x'.repeat(1000);
    expect(await f1(long)).toBe(1000);
    expect(await f2(long)).toBe(-1000);
    const { sha256Hex } = await import('../../src/core/keys.js');
    expect(await cache.get(`cached:len:v1:#${sha256Hex(JSON.stringify([long]))}`)).toBe('1000');
  });

  it('rejects bad options with ValidationError naming the option', () => {
    const f = async () => 1;
    const bad: [unknown, string][] = [
      [{ ttl: 0 }, 'ttl'],
      [{ ttl: -1 }, 'ttl'],
      [{ cache: {} }, 'cache'],
      [{ key: 'k' }, 'key'],
      [{ version: {} }, 'version'],
      [{ lock: 'yes' }, 'lock'],
      ['opts', 'options'],
    ];
    for (const [opts, option] of bad) {
      let err: unknown;
      try {
        cached(f, opts as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(opts)).toBe(true);
      expect((err as { option?: string }).option).toBe(option);
    }
  });
});

// ---- both compilations through the TypeScript API ---------------------------------------------

const FIXTURE = `
import { cached, DistributedCache } from '../../src/cache/index.js';

export function make(cache: DistributedCache) {
  class Svc {
    calls = 0;
    constructor(public factor: number) {}

    @cached({ ttl: 60, cache })
    async mul(a: number, opts: { x: number; y: number }): Promise<number> {
      this.calls++;
      return a * this.factor + opts.x + opts.y;
    }

    @cached({ cache, key: (id: string) => 'fixture:' + id })
    async byId(id: string): Promise<string> {
      this.calls++;
      return id.toUpperCase();
    }

    @cached({ cache })
    static async twice(s: string): Promise<string> {
      return s + s;
    }
  }
  return Svc;
}

// Bare decorators (no call) use the process-wide default cache.
const bare = cached as unknown as (...a: unknown[]) => void;
export class Bare {
  static runs = 0;
  @bare
  async inc(n: number): Promise<number> {
    Bare.runs++;
    return n + 1;
  }
  @bare
  static async dec(n: number): Promise<number> {
    Bare.runs++;
    return n - 1;
  }
}
`;

// Parsed files are shared by both compilations (parsing src and @types/node is most of the cost).
const parsed = new Map<string, ts.SourceFile | undefined>();

function compile(experimentalDecorators: boolean) {
  const fileName = path.resolve(__dirname, '__fixture__.ts');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    strict: true,
    noUncheckedIndexedAccess: true,
    experimentalDecorators,
    skipLibCheck: true,
    types: ['node'],
    lib: ['lib.es2023.d.ts', 'lib.decorators.d.ts', 'lib.decorators.legacy.d.ts'],
    noEmit: false,
  };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (f) => (f === fileName ? FIXTURE : readFile(f));
  host.fileExists = (
    (orig) => (f: string) =>
      f === fileName || orig(f)
  )(host.fileExists.bind(host));
  host.getSourceFile = (f, lang, ...rest) => {
    if (f === fileName) return ts.createSourceFile(f, FIXTURE, lang);
    if (!parsed.has(f)) parsed.set(f, getSourceFile(f, lang, ...rest));
    return parsed.get(f);
  };
  // Resolve `.js` specifiers to the `.ts` sources, as NodeNext does.
  host.resolveModuleNames = (names, containing) =>
    names.map((n) => {
      const r = ts.resolveModuleName(n.replace(/\.js$/, ''), containing, options, host);
      return r.resolvedModule;
    });
  const program = ts.createProgram([fileName], options, host);
  const diagnostics = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === fileName)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  const js = ts.transpileModule(FIXTURE, { compilerOptions: options, fileName }).outputText;
  return { diagnostics, js };
}

function load(js: string): { make(cache: DistributedCache): new (f: number) => FixtureSvc } {
  const module = { exports: {} as Record<string, unknown> };
  const req = (id: string) => {
    if (id === '../../src/cache/index.js') return cacheModule;
    throw new Error(`unexpected require ${id}`);
  };
  new Function('require', 'module', 'exports', js)(req, module, module.exports);
  return module.exports as never;
}

interface BareClass {
  new (): { inc(n: number): Promise<number> };
  runs: number;
  dec(n: number): Promise<number>;
}

interface FixtureSvc {
  calls: number;
  mul(a: number, o: { x: number; y: number }): Promise<number>;
  byId(id: string): Promise<string>;
}

describe.each([
  ['TC39 (no flag)', false],
  ['experimentalDecorators', true],
])('TypeScript compile: %s', (_label, legacy) => {
  it('type-checks, emits the expected decorator form, and caches', async () => {
    const { diagnostics, js } = compile(legacy);
    expect(diagnostics).toEqual([]);
    // Legacy emits __decorate(...); TC39 emits __esDecorate(...).
    expect(js.includes('__esDecorate')).toBe(!legacy);
    expect(js.includes('__decorate(')).toBe(legacy);
    const cache = new DistributedCache({ prefix: legacy ? 'legacy:' : 'tc39c:' });
    const Svc = load(js).make(cache);
    const s = new Svc(3);
    expect(await s.mul(2, { x: 1, y: 1 })).toBe(8);
    expect(await s.mul(2, { y: 1, x: 1 })).toBe(8);
    expect(s.calls).toBe(1);
    expect(await s.byId('ab')).toBe('AB');
    expect(await s.byId('ab')).toBe('AB');
    expect(s.calls).toBe(2);
    expect(await cache.get('cached:Svc.mul:v1:[2,{"x":1,"y":1}]')).toBe('8');
    expect(await cache.get('fixture:ab')).toBe('"AB"');
    const B = (load(js) as unknown as { Bare: BareClass }).Bare;
    const b = new B();
    const u = legacy ? 1000 : 2000; // distinct arguments per run: the default cache is shared
    expect([await b.inc(u), await b.inc(u), await B.dec(u), await B.dec(u)]).toEqual([
      u + 1,
      u + 1,
      u - 1,
      u - 1,
    ]);
    expect(B.runs).toBe(2);
    const twice = (Svc as unknown as { twice(s: string): Promise<string> }).twice;
    expect(await twice('o')).toBe('oo');
    expect(await cache.get('cached:Svc.twice:v1:["o"]')).toBe('"oo"');
    await cache.close();
    // The in-process TypeScript compile took 27 s of a 60 s default on a loaded 2-core machine.
  }, 180_000);
});
