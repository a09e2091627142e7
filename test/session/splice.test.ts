/**
 * The text splice behind appendMessage (JavaScript for the memory store and the optimistic Redis
 * path, Lua for the server-side path), checked on random sessions laid out the way different
 * writers lay out JSON: every other byte must survive, the result must parse to the expected
 * session.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SerializationError } from '../../src/core/errors.js';
import { RedisSessionStore } from '../../src/session/index.js';
import { appendToSessionText } from '../../src/session/splice.js';
import { servers, uniquePrefix } from '../harness/env.js';

// A small seeded PRNG so a failure names a reproducible case.
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const NASTY = [
  '"',
  '\\',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  ' ',
  'é',
  '😀',
  '\n',
  '\u2028',
  'a',
  'messages',
];

function randomValue(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 4 : 7));
  switch (k) {
    case 0:
      return Math.floor(r() * 1e6) / (r() < 0.5 ? 1 : 7);
    case 1:
      return Array.from(
        { length: Math.floor(r() * 6) },
        () => NASTY[Math.floor(r() * NASTY.length)],
      ).join('');
    case 2:
      return r() < 0.5 ? null : r() < 0.5;
    case 3:
      return r() < 0.5 ? [] : {};
    case 4:
    case 5:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 4); i++)
        o[`k${i}${NASTY[Math.floor(r() * 6)]}`] = randomValue(r, depth + 1);
      return o;
    }
  }
}

/** Serializes like different writers do: compact, Python's ", "/": " with \u escapes, indented. */
function layout(value: unknown, r: () => number): string {
  const style = Math.floor(r() * 3);
  if (style === 0) return JSON.stringify(value);
  if (style === 2) return `\n ${JSON.stringify(value, null, r() < 0.5 ? 2 : '\t')}\n`;
  const enc = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(enc).join(', ')}]`;
    if (v && typeof v === 'object') {
      return `{${Object.entries(v)
        .map(([k, x]) => `${enc(k)}: ${enc(x)}`)
        .join(', ')}}`;
    }
    if (typeof v === 'string') {
      return JSON.stringify(v).replace(
        /[\u007f-\uffff]/g,
        (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
      );
    }
    return JSON.stringify(v);
  };
  return enc(value);
}

function randomSession(r: () => number): { text: string; messages: unknown[] | undefined } {
  const fields: [string, unknown][] = [];
  for (let i = 0; i < Math.floor(r() * 4); i++) fields.push([`f${i}`, randomValue(r, 1)]);
  let messages: unknown[] | undefined;
  if (r() < 0.85) {
    messages = Array.from({ length: Math.floor(r() * 8) }, () => randomValue(r, 1));
    fields.splice(Math.floor(r() * (fields.length + 1)), 0, ['messages', messages]);
  }
  return { text: layout(Object.fromEntries(fields), r), messages };
}

const CASES = 300;

function expected(text: string, messages: unknown[] | undefined, items: unknown[], max?: number) {
  const all = [...(messages ?? []), ...items];
  const kept = max !== undefined && all.length > max ? all.slice(-max) : all;
  return { session: { ...(JSON.parse(text) as object), messages: kept }, length: kept.length };
}

describe('appendToSessionText (JavaScript)', () => {
  it(`${CASES} random sessions in several layouts`, () => {
    for (let seed = 1; seed <= CASES; seed++) {
      const r = rng(seed);
      const { text, messages } = randomSession(r);
      const items = Array.from({ length: 1 + Math.floor(r() * 3) }, () => randomValue(r, 2));
      const max = r() < 0.3 ? items.length + Math.floor(r() * 4) : undefined;
      const itemText = items.map((x) => JSON.stringify(x)).join(',');
      const out = appendToSessionText(text, itemText, max, 'k', items.length);
      const want = expected(text, messages, items, max);
      expect(JSON.parse(out.text), `seed ${seed}: ${text}`).toEqual(want.session);
      expect(out.length).toBe(want.length);
      if (messages !== undefined && messages.length > 0 && max === undefined) {
        // The bytes before the messages array are untouched.
        const at = text.indexOf('"messages":');
        expect(out.text.slice(0, at)).toBe(text.slice(0, at));
      }
    }
  });

  it('keeps numbers JavaScript cannot represent, byte for byte', () => {
    const text = '{"id": 12345678901234567890, "f": 1.10, "messages": []}';
    const out = appendToSessionText(text, '{"c":1}', undefined, 'k');
    expect(out.text).toBe('{"id": 12345678901234567890, "f": 1.10, "messages": [{"c":1}]}');
  });

  it('finds a messages key spelled with escapes', () => {
    const out = appendToSessionText('{"messag\\u0065s": [1], "x\\"": 2}', '2', undefined, 'k');
    expect(out.text).toBe('{"messag\\u0065s": [1,2], "x\\"": 2}');
    expect(out.length).toBe(2);
  });

  it('refuses text that is not a session', () => {
    for (const t of [
      '',
      '  ',
      'nope',
      '[]',
      '1',
      '"s"',
      'null',
      '{"messages": 1}',
      '{"messages": "x"}',
      '{"messages": [1,]}',
      '{"messages": [1 2]}',
      '{"messages": [{]}',
      '{"a" 1}',
      '{"a": 1,}',
      '{"a": 1} x',
      '{"a": "unterminated}',
      '{a: 1}',
      '{"messages": [[1]]',
    ]) {
      expect(() => appendToSessionText(t, '1', undefined, 'k'), t).toThrow(SerializationError);
    }
  });
});

describe('server-side append (Lua) on standalone Redis', () => {
  const store = new RedisSessionStore(servers().redisUrl, { appendMode: 'server' });
  const prefix = uniquePrefix('splice');
  afterAll(() => store.close());

  it(`${CASES} random sessions in several layouts give the same sessions as the JavaScript splice`, async () => {
    for (let seed = 1; seed <= CASES; seed++) {
      const r = rng(seed);
      const { text, messages } = randomSession(r);
      const items = Array.from({ length: 1 + Math.floor(r() * 3) }, () => randomValue(r, 2));
      const max = r() < 0.3 ? items.length + Math.floor(r() * 4) : undefined;
      const itemText = items.map((x) => JSON.stringify(x)).join(',');
      const key = `${prefix}${seed}`;
      await store.set(key, text, 60_000);
      const n = await store.append(key, itemText, {
        ttlMs: 60_000,
        maxItems: max,
        maxBytes: 1 << 20,
        count: items.length,
      });
      const want = expected(text, messages, items, max);
      const stored = (await store.get(key)) as string;
      expect(JSON.parse(stored), `seed ${seed}: ${text}`).toEqual(want.session);
      expect(n).toBe(want.length);
      expect(JSON.parse(appendToSessionText(text, itemText, max, key, items.length).text)).toEqual(
        JSON.parse(stored),
      );
    }
  });

  it('keeps numbers cjson would round, byte for byte', async () => {
    const key = `${prefix}num`;
    await store.set(
      key,
      '{"id": 12345678901234567890, "f": 0.30000000000000004, "e": [], "messages": []}',
      60_000,
    );
    await store.append(key, '{"c":1}', { ttlMs: 60_000, maxBytes: 1 << 20 });
    expect(await store.get(key)).toBe(
      '{"id": 12345678901234567890, "f": 0.30000000000000004, "e": [], "messages": [{"c":1}]}',
    );
  });

  it('appends to a messages key spelled with escapes, as the JavaScript splice does', async () => {
    const key = `${prefix}esc`;
    await store.set(key, '{"messag\\u0065s": [1]}', 60_000);
    expect(await store.append(key, '2', { ttlMs: 60_000, maxBytes: 1 << 20 })).toBe(2);
    expect(await store.get(key)).toBe('{"messag\\u0065s": [1,2]}');
    expect(appendToSessionText('{"messag\\u0065s": [1]}', '2', undefined, key).text).toBe(
      '{"messag\\u0065s": [1,2]}',
    );
  });
});
