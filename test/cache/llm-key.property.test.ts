/**
 * Property tests of the stable LLM key (llmCacheKey over stable-json): the same for requests
 * equal up to key order (at any depth), different when any sampling parameter differs, and
 * never a throw on prototype-named keys (`__proto__`, `constructor`, ...), however they were
 * made (JSON.parse, computed keys).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { llmCacheKey } from '../../src/cache/index.js';
import { argsKeyText, stableStringify } from '../../src/cache/stable-json.js';
import { isSerializationError } from '../../src/core/errors.js';

const PROTO_NAMES = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'toJSON',
  '__defineGetter__',
  'isPrototypeOf',
];

/** Keys including prototype names and escapes. */
const keyArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom(...PROTO_NAMES),
  fc.constantFrom('a', 'b', 'c', 'é', '\u0000', '"', '\\'),
);

/** JSON values whose objects may carry prototype-named own keys (built as JSON.parse would). */
const jsonArb: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 10 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(keyArb, tie('value')), { maxLength: 5 })
      .map((pairs) => ownObject(pairs.filter(([k, v]) => !(k === 'toJSON' && v !== undefined)))),
  ),
})).value;

/** An object with exactly these own keys (`__proto__` included), like JSON.parse makes. */
function ownObject(pairs: [string, unknown][]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of pairs) {
    Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
  }
  return o;
}

/** The same value with every object's keys in a shuffled order (deep). */
function shuffled(v: unknown, rnd: () => number): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffled(x, rnd));
  if (typeof v !== 'object' || v === null) return v;
  const keys = Object.keys(v);
  for (let i = keys.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
  return ownObject(keys.map((k) => [k, shuffled((v as Record<string, unknown>)[k], rnd)]));
}

const messagesArb = fc.array(
  fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string() }),
  { maxLength: 4 },
);

const requestArb = fc
  .tuple(
    fc.string({ minLength: 1, maxLength: 20 }),
    messagesArb,
    fc.dictionary(keyArb, jsonArb, { maxKeys: 4 }),
  )
  .map(([model, messages, extra]) => {
    const pairs: [string, unknown][] = [...Object.entries(extra)];
    pairs.push(['model', model], ['messages', messages]);
    // Later pairs win, as in an object literal.
    const byKey = new Map<string, unknown>(pairs);
    return ownObject([...byKey.entries()]) as { model: string };
  });

const SAMPLING: Record<string, fc.Arbitrary<unknown>> = {
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  max_tokens: fc.integer({ min: 1, max: 100_000 }),
  seed: fc.integer(),
  stop: fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 })),
  presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  tool_choice: fc.oneof(fc.constantFrom('auto', 'none', 'required'), jsonArb),
  response_format: jsonArb,
  n: fc.integer({ min: 1, max: 8 }),
  logit_bias: fc.dictionary(fc.string({ maxLength: 4 }), fc.integer({ min: -100, max: 100 })),
};

describe('llmCacheKey properties', () => {
  it('is the same for requests equal up to key order, at any depth', () => {
    fc.assert(
      fc.property(requestArb, fc.integer(), (req, seed) => {
        let s = seed >>> 0 || 1;
        const rnd = () => {
          s = (s * 1103515245 + 12345) >>> 0;
          return s / 2 ** 32;
        };
        const other = shuffled(req, rnd) as { model: string };
        expect(llmCacheKey(other)).toBe(llmCacheKey(req));
        // And the same for its JSON round trip (how a request arrives over HTTP).
        expect(llmCacheKey(JSON.parse(JSON.stringify(req)))).toBe(llmCacheKey(req));
      }),
      { numRuns: 300 },
    );
  });

  it('differs when any sampling parameter differs', () => {
    const names = Object.keys(SAMPLING);
    fc.assert(
      fc.property(requestArb, fc.constantFrom(...names), fc.gen(), (req, name, gen) => {
        const arb = SAMPLING[name] as fc.Arbitrary<unknown>;
        const a = gen(() => arb);
        const b = gen(() => arb);
        fc.pre(stableStringify(a) !== stableStringify(b));
        const withA = ownObject([...Object.entries(req), [name, a]]) as { model: string };
        const withB = ownObject([...Object.entries(req), [name, b]]) as { model: string };
        expect(llmCacheKey(withA)).not.toBe(llmCacheKey(withB));
        // Present vs absent also differs.
        const without = ownObject(Object.entries(req).filter(([k]) => k !== name)) as {
          model: string;
        };
        expect(llmCacheKey(withA)).not.toBe(llmCacheKey(without));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on prototype-named keys, and treats them as data', () => {
    fc.assert(
      fc.property(
        requestArb,
        fc.constantFrom(...PROTO_NAMES),
        jsonArb,
        jsonArb,
        (req, name, a, b) => {
          fc.pre(name !== 'toJSON' && stableStringify(a) !== stableStringify(b));
          const ka = llmCacheKey(
            ownObject([...Object.entries(req), [name, a]]) as { model: string },
          );
          const kb = llmCacheKey(
            ownObject([...Object.entries(req), [name, b]]) as { model: string },
          );
          expect(ka).toMatch(/^llm:[0-9a-f]{64}$/);
          // The field is part of the key like any other.
          expect(ka).not.toBe(kb);
        },
      ),
      { numRuns: 300 },
    );
    // As JSON.parse makes them, nested too.
    const parsed = JSON.parse(
      '{"model":"m","__proto__":{"x":1},"metadata_":{"constructor":{"prototype":1},"__proto__":null}}',
    );
    const k1 = llmCacheKey(parsed);
    const k2 = llmCacheKey(
      JSON.parse(
        '{"model":"m","__proto__":{"x":2},"metadata_":{"constructor":{"prototype":1},"__proto__":null}}',
      ),
    );
    expect(k1).not.toBe(k2);
    // Nothing leaked onto shared prototypes.
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('argument keys of `cached` never throw on prototype names and ignore key order', () => {
    fc.assert(
      fc.property(fc.array(jsonArb, { maxLength: 4 }), (args) => {
        const text = argsKeyText(args);
        expect(typeof text).toBe('string');
        expect(argsKeyText(args.map((a) => shuffled(a, Math.random)))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('hostile nesting gets a typed error, not a stack overflow', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    let err: unknown;
    try {
      llmCacheKey({ model: 'm', messages: [deep] });
    } catch (e) {
      err = e;
    }
    expect(isSerializationError(err)).toBe(true);
  });
});
