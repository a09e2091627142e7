/**
 * Property test (fast-check): the two implementations of the session splice, JavaScript
 * (splice.ts: the memory store and the optimistic Redis path) and Lua (the server-side append on
 * a real Redis), give the same answer on random sessions: keys spelled with escape sequences
 * (`"messag\u0065s"`, `"r\u006fle"`), duplicate keys (the last one wins), deep nesting (past
 * cjson's 1000 levels), any layout, with and without the message cap and byte trimming. Same
 * text written, same length, or the same error class with nothing written.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isSerializationError, isValueTooLargeError } from '../../src/core/errors.js';
import { RedisSessionStore } from '../../src/session/index.js';
import { appendToSessionText } from '../../src/session/splice.js';
import { servers, uniquePrefix } from '../harness/env.js';

/** A JSON string literal of `text`, each character escaped as \uXXXX with probability `p`. */
function spell(text: string, escapes: boolean[]): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (escapes[i % escapes.length]) {
      out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
    } else {
      out += JSON.stringify(ch).slice(1, -1);
    }
  }
  return `${out}"`;
}

const escapes = fc.array(fc.boolean(), { minLength: 1, maxLength: 8 });
const gap = fc.constantFrom('', ' ', '\n  ', '\t');
const scalar = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('"', '\\', '[', ']', '{', '}', ',', ':', 'é', '😀', 'messages', 'system'),
);

/** Nested arrays/objects `depth` levels deep around a scalar (text, built without recursion). */
const deep = fc
  .tuple(fc.integer({ min: 1, max: 1500 }), scalar, fc.boolean())
  .map(([depth, leaf, objects]) =>
    objects
      ? `${'{"d":'.repeat(depth)}${JSON.stringify(leaf)}${'}'.repeat(depth)}`
      : `${'['.repeat(depth)}${JSON.stringify(leaf)}${']'.repeat(depth)}`,
  );
const value = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: deep },
);

/** A message: an object with a role (maybe "system", maybe spelled with escapes, maybe twice). */
const message = fc
  .record({
    role: fc.constantFrom('system', 'user', 'assistant', 'tool'),
    roleEsc: escapes,
    valueEsc: escapes,
    duplicateRole: fc.option(fc.constantFrom('system', 'user'), { nil: undefined }),
    content: value,
    g: gap,
  })
  .map(
    ({ role, roleEsc, valueEsc, duplicateRole, content, g }) =>
      `{${g}${spell('role', roleEsc)}:${g}${spell(role, valueEsc)},"content":${content}${
        duplicateRole === undefined ? '' : `,"role":${JSON.stringify(duplicateRole)}`
      }${g}}`,
  );
const plainMessage = fc.oneof(message, value);

/** A stored session: other fields, one or more "messages" members (last wins), any spelling. */
const session = fc
  .record({
    before: fc.array(fc.tuple(fc.string({ maxLength: 6 }), value), { maxLength: 3 }),
    members: fc.array(
      fc.record({
        esc: escapes,
        items: fc.oneof(
          { weight: 6, arbitrary: fc.array(plainMessage, { maxLength: 8 }) },
          { weight: 1, arbitrary: value.map((v) => [`__raw__${v}`]) },
        ),
      }),
      { maxLength: 3 },
    ),
    after: fc.array(fc.tuple(fc.string({ maxLength: 6 }), value), { maxLength: 2 }),
    g: gap,
  })
  .map(({ before, members, after, g }) => {
    const parts = [
      ...before.map(([k, v]) => `${JSON.stringify(k)}:${g}${v}`),
      ...members.map(({ esc, items }) => {
        const first = items[0];
        const body =
          items.length === 1 && first?.startsWith('__raw__')
            ? first.slice('__raw__'.length)
            : `[${g}${items.join(`,${g}`)}${g}]`;
        return `${spell('messages', esc)}:${g}${body}`;
      }),
      ...after.map(([k, v]) => `${JSON.stringify(k)}:${g}${v}`),
    ];
    return `${g}{${g}${parts.join(`,${g}`)}${g}}${g}`;
  });

type Outcome = { ok: true; length: number; text: string | null } | { ok: false; error: string };

function errorKind(e: unknown): string {
  if (isValueTooLargeError(e)) return 'too-large';
  if (isSerializationError(e)) return 'serialization';
  throw e;
}

describe('session splice: JavaScript and Lua agree (fast-check, real Redis)', () => {
  const s = servers();
  const store = new RedisSessionStore(s.redisUrl, { appendMode: 'server' });
  const prefix = uniquePrefix('splice-prop');
  let n = 0;

  afterAll(async () => {
    await store.close();
  });

  it('on escaped and duplicate keys, deep nesting, the cap and byte trimming', async () => {
    await fc.assert(
      fc.asyncProperty(
        session,
        fc.array(plainMessage, { minLength: 1, maxLength: 3 }),
        fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
        fc.option(fc.double({ min: 0.2, max: 1.3, noNaN: true }), { nil: undefined }),
        async (text, items, cap, trimFactor) => {
          const count = items.length;
          const maxItems = cap === undefined ? undefined : Math.max(cap, count);
          const item = items.join(',');
          const trim = trimFactor !== undefined;
          const maxBytes = trim
            ? Math.max(
                1,
                Math.floor((Buffer.byteLength(text) + Buffer.byteLength(item)) * trimFactor),
              )
            : 1 << 22;

          let js: Outcome;
          try {
            const r = appendToSessionText(
              text,
              item,
              maxItems,
              'k',
              count,
              trim ? maxBytes : undefined,
            );
            js =
              Buffer.byteLength(r.text) > maxBytes
                ? { ok: false, error: 'too-large' }
                : { ok: true, length: r.length, text: r.text };
          } catch (e) {
            js = { ok: false, error: errorKind(e) };
          }

          const key = `${prefix}${n++}`;
          await store.set(key, text, 60_000);
          let lua: Outcome;
          try {
            const length = await store.append(key, item, {
              ttlMs: 60_000,
              maxBytes,
              count,
              ...(maxItems === undefined ? {} : { maxItems }),
              trim,
            });
            lua = { ok: true, length, text: await store.get(key) };
          } catch (e) {
            lua = { ok: false, error: errorKind(e) };
            // A refused append writes nothing.
            expect(await store.get(key)).toBe(text);
          }
          expect(lua).toEqual(js);
          if (js.ok && trim) {
            expect(Buffer.byteLength(js.text as string)).toBeLessThanOrEqual(maxBytes);
          }
          if (js.ok) {
            // Valid input stays valid JSON and ends with the new items, in order.
            const after = JSON.parse(js.text as string) as { messages: unknown[] };
            expect(after.messages.slice(-count)).toEqual(JSON.parse(`[${item}]`));
            expect(after.messages).toHaveLength(js.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  }, 120_000);
});
