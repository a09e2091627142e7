import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core/errors.js';
import { KEY_LAYOUT, hashTag, sha256Hex, validateId, validatePrefix } from '../../src/core/keys.js';

describe('keys', () => {
  it('keeps the seed key layout', () => {
    expect(KEY_LAYOUT).toEqual({ session: 'session:', history: 'history:', llm: 'llm:' });
    expect(`${KEY_LAYOUT.llm}${sha256Hex('hi')}`).toBe(
      'llm:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4',
    );
  });

  it.each([
    ['', /must not be empty/],
    [42, /must be a string/],
    [undefined, /must be a string/],
    ['a\nb', /control characters/],
    ['a\u0000b', /control characters/],
    ['x'.repeat(513), /over the limit of 512/],
  ])('rejects the bad id %j with a ValidationError naming it', (id, msg) => {
    let err: unknown;
    try {
      validateId(id, 'sessionId');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).option).toBe('sessionId');
    expect((err as Error).message).toMatch(/^sessionId /);
    expect((err as Error).message).toMatch(msg);
  });

  it('accepts ordinary ids', () => {
    expect(validateId('user-42:conv_7')).toBe('user-42:conv_7');
    expect(validateId('ünïcödé')).toBe('ünïcödé');
  });

  it('validates prefixes and builds hash tags', () => {
    expect(validatePrefix('')).toBe('');
    expect(() => validatePrefix(3)).toThrow(ValidationError);
    expect(hashTag('q{1}')).toBe('{q_1_}');
  });
});
