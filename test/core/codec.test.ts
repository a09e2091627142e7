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

  it('drops __proto__ and constructor keys when parsing', () => {
    const parsed = safeJsonParse<Record<string, unknown>>(
      '{"a":1,"__proto__":{"polluted":true},"nested":{"constructor":{"prototype":{"x":1}}}}',
    );
    expect(parsed.a).toBe(1);
    expect(Object.hasOwn(parsed, '__proto__')).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(parsed.nested).toEqual({});
  });

  it('reports text that is not JSON as SerializationError', () => {
    expect(() => codec.decode('{nope')).toThrow(SerializationError);
  });

  it('validates maxValueBytes', () => {
    expect(() => new JsonCodec({ maxValueBytes: 0 })).toThrow(ValidationError);
    expect(() => new JsonCodec({ maxValueBytes: Number.NaN })).toThrow(/maxValueBytes/);
  });
});
