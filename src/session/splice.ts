import { SerializationError } from '../core/errors.js';

/**
 * Appending to a stored session by editing its JSON text in place: the new message is inserted
 * before the `]` of the top-level `messages` array (and the oldest entries cut when capped).
 * Every other byte stays as it was, so fields this call never meant to touch (numbers beyond
 * 2^53, `NaN`-free floats printed by Python, key order, spacing) survive exactly, whoever wrote
 * them. The Lua script in redis-store.ts implements the same walk server-side.
 */

/** The result of {@link appendToSessionText}. */
export interface SpliceResult {
  /** The new session text. */
  text: string;
  /** Number of messages after the append (and the cap). */
  length: number;
}

function ws(s: string, i: number): number {
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return i;
  }
  return -1;
}

/** Index of the quote closing the string that opens at `i`. */
function strEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const k = s.indexOf('"', j);
    if (k < 0) return s.length;
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
      if (q < 0) return s.length;
      j = strEnd(s, q) + 1;
    }
  }
  for (let p = i; p < s.length; p++) {
    const b = s.charCodeAt(p);
    if (b === 44 || b === 125 || b === 93 || b === 32 || b === 9 || b === 10 || b === 13) {
      return p - 1;
    }
  }
  return s.length - 1;
}

/**
 * Appends the JSON text `item` to the `messages` array of the session text `text` (`null`: no
 * session yet), keeping at most `maxItems` messages (oldest dropped).
 * @throws SerializationError when `text` is not a JSON object or its `messages` is not an array.
 */
export function appendToSessionText(
  text: string | null,
  item: string,
  maxItems: number | undefined,
  key: string,
): SpliceResult {
  if (text === null) return { text: `{"messages":[${item}]}`, length: 1 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SerializationError(`stored session at ${key} is not valid JSON`, {
      cause: e,
      context: { key },
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SerializationError(`stored session at ${key} is not a JSON object`, {
      context: { key },
    });
  }
  const messages = (parsed as { messages?: unknown }).messages;
  if (messages !== undefined && !Array.isArray(messages)) {
    throw new SerializationError(`stored session at ${key} has a "messages" that is not an array`, {
      context: { key },
    });
  }

  const s = text;
  const open = ws(s, 0);
  let i = ws(s, open + 1);
  const empty = s.charCodeAt(i) === 125;
  let vs = -1;
  let ve = -1;
  if (!empty) {
    for (;;) {
      const kend = strEnd(s, i);
      const isMessages = s.slice(i + 1, kend) === 'messages';
      i = ws(s, ws(s, kend + 1) + 1);
      const e = valueEnd(s, i);
      // The last duplicate wins, as in JSON.parse and Python's json.loads.
      if (isMessages) {
        vs = i;
        ve = e;
      }
      i = ws(s, e + 1);
      if (i < 0 || s.charCodeAt(i) !== 44) break;
      i = ws(s, i + 1);
    }
  }
  if (messages === undefined) {
    return {
      text: `${s.slice(0, open + 1)}"messages":[${item}]${empty ? '' : ','}${s.slice(open + 1)}`,
      length: 1,
    };
  }
  const starts: number[] = [];
  let last = -1;
  if (vs >= 0) {
    let j = ws(s, vs + 1);
    if (s.charCodeAt(j) !== 93) {
      for (;;) {
        starts.push(j);
        last = valueEnd(s, j);
        j = ws(s, last + 1);
        if (j < 0 || s.charCodeAt(j) !== 44) break;
        j = ws(s, j + 1);
      }
    }
  }
  if (vs < 0 || starts.length !== messages.length) {
    // A key spelled with escapes ("messag\u0065s") or text this walk misread: fall back to
    // re-encoding, which is correct for every JSON value JavaScript can represent.
    const next = [...messages, JSON.parse(item)];
    const kept = maxItems !== undefined && next.length > maxItems ? next.slice(-maxItems) : next;
    return {
      text: JSON.stringify({ ...(parsed as object), messages: kept }),
      length: kept.length,
    };
  }
  let length = starts.length + 1;
  let keepFrom = 0;
  if (maxItems !== undefined && length > maxItems) {
    keepFrom = length - maxItems;
    length = maxItems;
  }
  const kept = keepFrom < starts.length ? `${s.slice(starts[keepFrom], last + 1)},` : '';
  return { text: `${s.slice(0, vs)}[${kept}${item}]${s.slice(ve + 1)}`, length };
}
