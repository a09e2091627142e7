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

// Only a cheap substring test decides whether the slower reviver pass is needed at all.
const DANGEROUS = /"(?:__proto__|constructor|prototype)"\s*:/;

function dropDangerousKeys(key: string, value: unknown): unknown {
  return key === '__proto__' || key === 'constructor' || key === 'prototype' ? undefined : value;
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
 * JSON encoding with a size limit and a safe parse: stored text never plants `__proto__` or
 * `constructor` keys in the objects we hand back, values JSON cannot hold (BigInt, cycles,
 * functions, symbols) get a {@link SerializationError} instead of a crash or a silent drop.
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

  /** Parses stored JSON text; drops `__proto__`/`constructor`/`prototype` keys. */
  decode<T = unknown>(text: string, what = 'stored value'): T {
    try {
      return (DANGEROUS.test(text) ? JSON.parse(text, dropDangerousKeys) : JSON.parse(text)) as T;
    } catch (e) {
      throw new SerializationError(`${what} is not valid JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
}

/** Safe JSON parse with the default limits (see {@link JsonCodec.decode}). */
export function safeJsonParse<T = unknown>(text: string): T {
  return defaultCodec.decode<T>(text);
}

const defaultCodec = new JsonCodec();
