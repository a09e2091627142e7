import { SerializationError } from '../core/errors.js';

/**
 * Appending to a stored session by editing its JSON text in place: the new message is inserted
 * before the `]` of the top-level `messages` array (and the oldest entries cut when capped).
 * Every other byte stays as it was, so fields this call never meant to touch (integers beyond
 * 2^53, floats as Python printed them, key order, spacing) survive exactly, whoever wrote them.
 * The Lua script in append-script.ts implements the same walk server-side, step for step (the
 * property test in test/session/splice-property.test.ts holds the two to one answer).
 *
 * The walk checks the structure it passes through (the top-level object, its keys, the
 * messages array and its elements' bracket balance) instead of parsing the whole text: a
 * full JSON.parse would cost as much as the rest of an append. Text that is broken deeper
 * inside another field was already unreadable and stays so; it is never made worse.
 */

/** The result of {@link appendToSessionText}. */
export interface SpliceResult {
  /** The new session text. */
  text: string;
  /** Number of messages after the append (and the cap). */
  length: number;
}

/** Options of {@link appendToSessionText} beyond the item itself. */
export interface SpliceOptions {
  /** Keep at most this many messages, oldest dropped first. */
  maxItems?: number;
  /** How many comma-separated values the item holds. @default 1 */
  count?: number;
  /**
   * Drop the oldest messages (never the first `system` message, never the new ones) until the
   * text is at most this many UTF-8 bytes. Without it nothing is dropped for size.
   */
  trimToBytes?: number;
}

class Malformed extends Error {}

function ws(s: string, i: number): number {
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return i;
  }
  return s.length;
}

/** Index of the quote closing the string that opens at `i`. */
function strEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const k = s.indexOf('"', j);
    if (k < 0) throw new Malformed('unterminated string');
    let m = k - 1;
    while (s.charCodeAt(m) === 92) m--;
    // An even number of backslashes before the quote (including none) means it is not escaped.
    if ((k - 1 - m) % 2 === 0) return k;
    j = k + 1;
  }
}

/** Index of the last character of the JSON value that starts at `i`. */
function valueEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 34) return strEnd(s, i);
  if (c === 123 || c === 91) {
    let depth = 0;
    let j = i;
    for (;;) {
      // Brackets can only occur between strings; jump from string to string with indexOf.
      const q = s.indexOf('"', j);
      const stop = q < 0 ? s.length : q;
      for (let p = j; p < stop; p++) {
        const b = s.charCodeAt(p);
        if (b === 123 || b === 91) depth++;
        else if ((b === 125 || b === 93) && --depth === 0) return p;
      }
      if (q < 0) throw new Malformed('unbalanced brackets');
      j = strEnd(s, q) + 1;
    }
  }
  // A number, true, false or null.
  if (!((c >= 48 && c <= 57) || c === 45 || c === 116 || c === 102 || c === 110)) {
    throw new Malformed('unexpected character');
  }
  for (let p = i + 1; p < s.length; p++) {
    const b = s.charCodeAt(p);
    if (b === 44 || b === 125 || b === 93 || b === 32 || b === 9 || b === 10 || b === 13) {
      return p - 1;
    }
  }
  return s.length - 1;
}

/** Whether the JSON string at `start..end` (quotes included) decodes to `name`. */
function stringIs(s: string, start: number, end: number, name: string): boolean {
  // An escape makes the raw text longer than what it decodes to, so raw text of exactly the
  // name's length is either the name itself or something else.
  if (end - start - 1 === name.length) return s.startsWith(name, start + 1);
  // A key written with escapes ("messag\u0065s") still names the field; only then decode it.
  const backslash = s.indexOf('\\', start);
  return backslash >= 0 && backslash < end && JSON.parse(s.slice(start, end + 1)) === name;
}

/**
 * Walks the object whose `{` is at `open`. Returns the bounds of the value of the last member
 * named `name` (`-1` when there is none: the last duplicate wins, as in JSON.parse and Python's
 * json.loads) and the index of the closing `}`.
 */
function member(s: string, open: number, name: string): [number, number, number] {
  let i = ws(s, open + 1);
  let vs = -1;
  let ve = -1;
  if (s.charCodeAt(i) === 125) return [vs, ve, i];
  for (;;) {
    if (s.charCodeAt(i) !== 34) throw new Malformed('expected a key');
    const kend = strEnd(s, i);
    const found = stringIs(s, i, kend, name);
    i = ws(s, kend + 1);
    if (s.charCodeAt(i) !== 58) throw new Malformed('expected ":"');
    i = ws(s, i + 1);
    const e = valueEnd(s, i);
    if (found) {
      vs = i;
      ve = e;
    }
    i = ws(s, e + 1);
    const c = s.charCodeAt(i);
    if (c === 125) return [vs, ve, i];
    if (c !== 44) throw new Malformed('expected "," or "}"');
    i = ws(s, i + 1);
  }
}

/** Whether the message at `start..end` is an object whose `role` is `"system"`. */
function isSystem(s: string, start: number): boolean {
  if (s.charCodeAt(start) !== 123) return false;
  const [vs, ve] = member(s, start, 'role');
  return vs >= 0 && s.charCodeAt(vs) === 34 && stringIs(s, vs, ve, 'system');
}

function byteLength(s: string, start: number, end: number): number {
  return Buffer.byteLength(s.slice(start, end));
}

function walk(s: string, key: string, item: string, o: SpliceOptions): SpliceResult {
  const count = o.count ?? 1;
  const open = ws(s, 0);
  if (s.charCodeAt(open) !== 123) {
    throw new SerializationError(`stored session at ${key} is not a JSON object`, {
      context: { key },
    });
  }
  const [vs, ve, close] = member(s, open, 'messages');
  if (ws(s, close + 1) !== s.length) throw new Malformed('text after the object');
  if (vs < 0) {
    const empty = ws(s, open + 1) === close;
    return {
      text: `${s.slice(0, open + 1)}"messages":[${item}]${empty ? '' : ','}${s.slice(open + 1)}`,
      length: count,
    };
  }
  if (s.charCodeAt(vs) !== 91) {
    throw new SerializationError(`stored session at ${key} has a "messages" that is not an array`, {
      context: { key },
    });
  }
  const starts: number[] = [];
  let last = -1;
  let j = ws(s, vs + 1);
  if (s.charCodeAt(j) !== 93) {
    for (;;) {
      starts.push(j);
      last = valueEnd(s, j);
      j = ws(s, last + 1);
      const c = s.charCodeAt(j);
      if (c === 93) break;
      if (c !== 44) throw new Malformed('expected "," or "]"');
      j = ws(s, j + 1);
    }
  }
  const n = starts.length;
  let k = 0;
  if (o.maxItems !== undefined && n + count > o.maxItems) k = n + count - o.maxItems;
  let pin = -1;
  const limit = o.trimToBytes;
  if (limit !== undefined) {
    // Only the bytes that change are counted: the text around the array and the new items
    // stay, the kept run of old messages shrinks from its oldest end.
    const fixed =
      byteLength(s, 0, vs) + byteLength(s, ve + 1, s.length) + 2 + Buffer.byteLength(item);
    let kept = k < n ? byteLength(s, starts[k] as number, last + 1) + 1 : 0;
    if (fixed + kept > limit) {
      let system = -1;
      for (let i = k; i < n && system < 0; i++) if (isSystem(s, starts[i] as number)) system = i;
      let pinned = 0;
      while (fixed + kept + pinned > limit && k < n) {
        const from = starts[k] as number;
        if (k === system) {
          pin = k;
          pinned = byteLength(s, from, valueEnd(s, from) + 1) + 1;
        }
        kept = k + 1 < n ? kept - byteLength(s, from, starts[k + 1] as number) : 0;
        k++;
      }
    }
  }
  const pinnedText =
    pin >= 0 ? `${s.slice(starts[pin], valueEnd(s, starts[pin] as number) + 1)},` : '';
  const keptText = k < n ? `${s.slice(starts[k], last + 1)},` : '';
  return {
    text: `${s.slice(0, vs)}[${pinnedText}${keptText}${item}]${s.slice(ve + 1)}`,
    length: (pin >= 0 ? 1 : 0) + n - k + count,
  };
}

/**
 * Appends `item`, the JSON text of `count` comma-separated values, to the `messages` array of
 * the session text `text` (`null`: no session yet), keeping at most `maxItems` messages (oldest
 * dropped; `count` must not exceed it) and, with `trimToBytes`, dropping the oldest messages
 * except the first `system` one until the text fits (it may still not fit: the caller checks).
 * @throws SerializationError when `text` is not a JSON object or its `messages` is not an array.
 */
export function appendToSessionText(
  text: string | null,
  item: string,
  maxItems: number | undefined,
  key: string,
  count = 1,
  trimToBytes?: number,
): SpliceResult {
  if (text === null) return { text: `{"messages":[${item}]}`, length: count };
  try {
    return walk(text, key, item, { maxItems, count, trimToBytes });
  } catch (e) {
    if (e instanceof Malformed || e instanceof SyntaxError) {
      throw new SerializationError(`stored session at ${key} is not valid JSON (${e.message})`, {
        cause: e,
        context: { key },
      });
    }
    throw e;
  }
}
