import type { JsonCodec } from '../core/codec.js';
import { SerializationError, ValidationError, describeValue } from '../core/errors.js';

/** @internal True for a non-array object. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * @internal A stored session's text as an object: `{ messages: [] }` for none, `messages`
 * added when missing.
 * @throws SerializationError when the text is not a JSON object.
 */
export function decodeSession<T>(codec: JsonCodec, text: string | null, key: string): T {
  if (text === null) return { messages: [] } as unknown as T;
  const value = codec.decode<unknown>(text, `stored session at ${key}`);
  if (!isPlainObject(value)) {
    throw new SerializationError(`stored session at ${key} is not a JSON object`, {
      context: { key },
    });
  }
  if (value.messages === undefined) value.messages = [];
  return value as T;
}

/**
 * @internal The text of a whole session, its history cut to the last `maxMessages`.
 * @throws ValidationError when `data` is not an object; as {@link encodeJson} otherwise.
 */
export function encodeSession(
  codec: JsonCodec,
  data: unknown,
  what: string,
  maxMessages: number | undefined,
): string {
  if (!isPlainObject(data)) {
    throw new ValidationError(`${what} must be an object, received ${describeValue(data)}`, {
      option: what === 'data' ? 'data' : 'fn',
    });
  }
  let value = data;
  if (
    maxMessages !== undefined &&
    Array.isArray(value.messages) &&
    value.messages.length > maxMessages
  ) {
    value = { ...value, messages: value.messages.slice(value.messages.length - maxMessages) };
  }
  return encodeJson(codec, value, what);
}

/**
 * @internal JSON text of `value`, refusing what JSON cannot hold. Plain `JSON.stringify` plus a
 * walk that finds functions and symbols (which stringify would silently drop) costs about a
 * third of a stringify with a replacer function, and this runs on every write.
 * @throws SerializationError for what JSON cannot hold; ValueTooLargeError over the codec's
 *   `maxValueBytes`.
 */
export function encodeJson(codec: JsonCodec, value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    // A cycle, a BigInt or a throwing toJSON.
    throw new SerializationError(
      `${what} cannot be encoded as JSON: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  }
  const bad = unencodable(value);
  if (bad !== undefined || text === undefined) {
    const path =
      bad === undefined
        ? what
        : what + bad.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
    throw new SerializationError(
      `${what} cannot be encoded as JSON: ${bad?.type ?? typeof value} at ${path}`,
      { context: { type: bad?.type ?? typeof value, path } },
    );
  }
  codec.checkSize(text, what);
  return text;
}

/**
 * The first function or symbol inside `value`, with the path to it (built only on the way back
 * from a find, so the common case allocates nothing), or `undefined`. Only called after
 * `JSON.stringify` succeeded, so there is no cycle to guard against. Subtrees with a `toJSON`
 * method are skipped: stringify encodes what that returns, not the object.
 */
function unencodable(value: unknown): { type: string; path: (string | number)[] } | undefined {
  const t = typeof value;
  if (t === 'function' || t === 'symbol') return { type: t, path: [] };
  if (t !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'object' || typeof v === 'function' || typeof v === 'symbol') {
        const bad = unencodable(v);
        if (bad) {
          bad.path.unshift(i);
          return bad;
        }
      }
    }
    return undefined;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (typeof v === 'object' || typeof v === 'function' || typeof v === 'symbol') {
      const bad = unencodable(v);
      if (bad) {
        bad.path.unshift(k);
        return bad;
      }
    }
  }
  return undefined;
}
