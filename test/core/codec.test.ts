import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonCodec, safeJsonParse } from '../../src/core/codec.js';
import { SerializationError, ValidationError, ValueTooLargeError } from '../../src/core/errors.js';

describe('JsonCodec', () => {
  const codec = new JsonCodec({ maxValueBytes: 64 });

  it('round-trips JSON values', () => {
    const v = { a: 1, b: ['x', null, true], c: { d: 'é' } };
    expect(codec.decode(codec.encode(v))).toEqual(v);
  });

  it('rejects a BigInt with SerializationError naming the key', () => {
    expect(() => codec.encode({ n: 10n })).toThrow(SerializationError);
    expect(() => codec.encode({ n: 10n })).toThrow(/bigint at key "n"/);
    expect(() => codec.encode(10n)).toThrow(SerializationError);
  });

  it('rejects cycles and functions instead of dropping them', () => {
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    expect(() => codec.encode(cyc)).toThrow(SerializationError);
    expect(() => codec.encode({ f: () => 1 })).toThrow(SerializationError);
    expect(() => codec.encode(() => 1)).toThrow(SerializationError);
    expect(() => codec.encode(undefined)).toThrow(SerializationError);
    expect(() => codec.encode({ s: Symbol('x') })).toThrow(SerializationError);
  });

  it('rejects an oversized value with ValueTooLargeError (a ValidationError)', () => {
    const big = { text: 'x'.repeat(100) };
    expect(() => codec.encode(big)).toThrow(ValueTooLargeError);
    expect(() => codec.encode(big)).toThrow(ValidationError);
    // Multi-byte characters count in bytes, not characters.
    expect(() => codec.encode('é'.repeat(40))).toThrow(ValueTooLargeError);
    expect(codec.encode('é'.repeat(20))).toBe(JSON.stringify('é'.repeat(20)));
  });

  it('drops __proto__ however it is spelled, and keeps constructor and prototype as data', () => {
    const parsed = safeJsonParse<Record<string, unknown>>(
      '{"a":1,"__proto__":{"polluted":true},"\\u005f_proto__":{"x":1},"\\u005F\\u005Fproto\\u005f\\u005f":2,' +
        '"nested":{"constructor":{"prototype":{"x":1}}},"schema":{"constructor":"String"}}',
    );
    expect(Object.keys(parsed)).toEqual(['a', 'nested', 'schema']);
    expect(Object.hasOwn(parsed, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(parsed.nested).toEqual({ constructor: { prototype: { x: 1 } } });
    expect(parsed.schema).toEqual({ constructor: 'String' });
    expect(Object.hasOwn(parsed.schema as object, 'constructor')).toBe(true);
    // Inside arrays and deep nesting too.
    const deep = safeJsonParse<unknown[]>(
      `[${'['.repeat(2000)}{"\\u005f\\u005fproto__":{"a":1},"k":1}${']'.repeat(2000)}]`,
    );
    let at: unknown = deep;
    while (Array.isArray(at)) at = at[0];
    expect(at).toEqual({ k: 1 });
    expect(Object.hasOwn(at as object, '__proto__')).toBe(false);
  });

  it('property: decodes any JSON text (escaped, duplicate, hostile keys) as JSON.parse minus __proto__', () => {
    fc.assert(
      fc.property(jsonText, ({ text }) => {
        const ours = safeJsonParse(text);
        const reference = JSON.parse(text, (k, v) => (k === '__proto__' ? undefined : v));
        expect(canonical(ours)).toStrictEqual(canonical(reference));
        expect(hasOwnProto(ours)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
  it('reports text that is not JSON as SerializationError', () => {
    expect(() => codec.decode('{nope')).toThrow(SerializationError);
  });

  it('validates maxValueBytes', () => {
    expect(() => new JsonCodec({ maxValueBytes: 0 })).toThrow(ValidationError);
    expect(() => new JsonCodec({ maxValueBytes: Number.NaN })).toThrow(/maxValueBytes/);
  });
});

// ---------------------------------------------------------------------------------------------
// Random JSON text whose keys include prototype names, written with random \uXXXX escapes
// (either hex case) and random whitespace, with duplicate keys allowed.

const HOSTILE = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

function escapeKey(key: string, mask: readonly boolean[], upper: boolean): string {
  let out = '"';
  for (let i = 0; i < key.length; i++) {
    const ch = key[i] as string;
    if (mask[i % Math.max(1, mask.length)]) {
      const hex = key.charCodeAt(i).toString(16).padStart(4, '0');
      out += `\\u${upper ? hex.toUpperCase() : hex}`;
    } else {
      out += JSON.stringify(ch).slice(1, -1);
    }
  }
  return `${out}"`;
}

const keyText = fc
  .tuple(
    fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 8 })),
    fc.array(fc.boolean(), { maxLength: 9 }),
    fc.boolean(),
  )
  .map(([k, mask, upper]) => escapeKey(k, mask, upper));
const ws = fc.constantFrom('', ' ', '\n', '\t ');

const { value: jsonValue } = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.oneof(
      fc.string().map((s) => JSON.stringify(s)),
      fc.integer().map(String),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
      fc.constantFrom('true', 'false', 'null'),
    ),
    fc.array(tie('value'), { maxLength: 5 }).map((xs) => `[${xs.join(',')}]`),
    fc
      .array(fc.tuple(ws, keyText, ws, tie('value')), { maxLength: 6 })
      .map((es) => `{${es.map(([a, k, b, v]) => `${a}${k}${b}:${v}`).join(',')}}`),
  ),
}));
const jsonText = jsonValue.map((text) => ({ text }));

/** Own keys (including an own `__proto__`) and values, as plain nested arrays. */
function canonical(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return ['array', v.map(canonical)];
  return [
    'object',
    Object.getPrototypeOf(v) === Object.prototype,
    Object.keys(v).map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
  ];
}

function hasOwnProto(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (Object.hasOwn(v, '__proto__')) return true;
  return Object.values(v).some(hasOwnProto);
}
