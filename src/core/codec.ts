import { SerializationError, ValueTooLargeError } from './errors.js';
import { assertNumber } from './validate.js';

/** Default `maxValueBytes`: 1 MiB of encoded JSON. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** Options of {@link JsonCodec}. */
export interface CodecOptions {
  /**
   * Largest encoded value accepted, in bytes (UTF-8). Larger values get a
   * {@link ValueTooLargeError} instead of being written.
   * @default 1048576 (1 MiB)
   */
  maxValueBytes?: number;
}

/**
 * Whether parsed text may hold a `__proto__` key. JSON can spell a key's characters only
 * literally or as `\uXXXX` escapes (it has no other escape for letters or `_`), so text with
 * neither `__proto__` nor a backslash-u cannot produce one; text from JSON.stringify has no `\u`
 * unless it holds control characters or lone surrogates. The walk below then runs for almost no
 * real value.
 */
function mayHoldProto(text: string): boolean {
  return text.includes('__proto__') || text.includes('\\u');
}

/**
 * Deletes every own `__proto__` key (JSON.parse creates them as ordinary own properties, which
 * `Object.assign`, spreads and naive merges then turn into prototype changes). Iterative, so
 * deeply nested input cannot overflow the stack here.
 */
function stripProtoKeys(root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const v of node) if (v !== null && typeof v === 'object') stack.push(v);
      continue;
    }
    if (Object.hasOwn(node, '__proto__')) Reflect.deleteProperty(node, '__proto__');
    for (const k in node) {
      const v = (node as Record<string, unknown>)[k];
      if (v !== null && typeof v === 'object') stack.push(v);
    }
  }
}

function rejectUnencodable(this: unknown, key: string, value: unknown): unknown {
  const t = typeof value;
  if (t === 'bigint' || t === 'function' || t === 'symbol') {
    throw new SerializationError(`cannot encode ${t} at key ${JSON.stringify(key)} as JSON`, {
      context: { key, type: t },
    });
  }
  return value;
}

/**
 * JSON encoding with a size limit and a safe parse: stored text never plants an own `__proto__`
 * key in the objects we hand back (however the text spells it: `"__proto__"` or
 * `"\u005f_proto__"`), and every other key, `constructor` and `prototype` included, comes back
 * as ordinary data. Values JSON cannot hold (BigInt, cycles, functions, symbols) get a
 * {@link SerializationError} instead of a crash or a silent drop.
 */
export class JsonCodec {
  /** The limit in bytes. */
  readonly maxValueBytes: number;

  constructor(options: CodecOptions = {}) {
    this.maxValueBytes =
      options.maxValueBytes === undefined
        ? DEFAULT_MAX_VALUE_BYTES
        : assertNumber(options.maxValueBytes, 'maxValueBytes', { integer: true, positive: true });
  }

  /** Encodes `value` as JSON; `what` names it in error messages. */
  encode(value: unknown, what = 'value'): string {
    let text: string | undefined;
    try {
      text = JSON.stringify(value, rejectUnencodable);
    } catch (e) {
      if (e instanceof SerializationError) {
        throw new SerializationError(`${what}: ${e.message}`, { cause: e, context: e.context });
      }
      // A cycle (TypeError: Converting circular structure) or a throwing toJSON.
      throw new SerializationError(`${what} cannot be encoded as JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (text === undefined) {
      throw new SerializationError(`${what} cannot be encoded as JSON (it is ${typeof value})`);
    }
    this.checkSize(text, what);
    return text;
  }

  /** Throws a {@link ValueTooLargeError} if `text` is over the limit. */
  checkSize(text: string, what = 'value'): void {
    // A UTF-8 byte is at least one UTF-16 unit and at most three per unit: skip the exact count
    // when the length alone settles it.
    if (text.length * 3 <= this.maxValueBytes) return;
    const bytes = Buffer.byteLength(text);
    if (bytes > this.maxValueBytes) throw new ValueTooLargeError(what, bytes, this.maxValueBytes);
  }

  /**
   * Parses stored JSON text. The result equals `JSON.parse(text)` except that no object in it
   * has an own `__proto__` key; `constructor`, `prototype` and every other key are kept.
   */
  decode<T = unknown>(text: string, what = 'stored value'): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new SerializationError(`${what} is not valid JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
    if (value !== null && typeof value === 'object' && mayHoldProto(text)) stripProtoKeys(value);
    return value as T;
  }
}

/** Safe JSON parse with the default limits (see {@link JsonCodec.decode}). */
export function safeJsonParse<T = unknown>(text: string): T {
  return defaultCodec.decode<T>(text);
}

const defaultCodec = new JsonCodec();
