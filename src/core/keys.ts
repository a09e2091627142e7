import * as nodeCrypto from 'node:crypto';
import { ValidationError, describeValue } from './errors.js';

/**
 * Key layout. The defaults are the seed's, so a Python service written from the scaling guide and
 * an azscale service can share one Redis: `session:{id}`, `history:{id}`, `llm:{sha256}`.
 */
export const KEY_LAYOUT = Object.freeze({
  /** Prefix of session keys (`session:{id}`); the default `prefix` of the session manager. */
  session: 'session:',
  /** Prefix of conversation-history keys (`history:{id}`). */
  history: 'history:',
  /** Prefix of LLM response cache keys (`llm:{sha256}`); the default `prefix` of the LLM cache. */
  llm: 'llm:',
});

/** Longest id or key accepted, in characters. */
export const MAX_ID_LENGTH = 512;
/** Longest prefix accepted, in characters. */
export const MAX_PREFIX_LENGTH = 128;

// C0 controls, DEL and C1 controls: they break logs, terminals and some Redis tooling.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Validates an id or key: a non-empty string of at most `maxLength` characters without control
 * characters. Returns it unchanged; throws a {@link ValidationError} naming `name` otherwise.
 */
export function validateId(id: unknown, name = 'id', maxLength = MAX_ID_LENGTH): string {
  if (typeof id !== 'string') {
    throw new ValidationError(`${name} must be a string, received ${describeValue(id)}`, {
      option: name,
    });
  }
  if (id.length === 0) {
    throw new ValidationError(`${name} must not be empty`, { option: name });
  }
  if (id.length > maxLength) {
    throw new ValidationError(
      `${name} is ${id.length} characters long, over the limit of ${maxLength}`,
      { option: name, context: { length: id.length, maxLength } },
    );
  }
  if (CONTROL.test(id)) {
    throw new ValidationError(`${name} must not contain control characters`, { option: name });
  }
  return id;
}

/** Validates a key prefix: a string (may be empty) of bounded length without control characters. */
export function validatePrefix(prefix: unknown, name = 'prefix'): string {
  if (typeof prefix !== 'string') {
    throw new ValidationError(`${name} must be a string, received ${describeValue(prefix)}`, {
      option: name,
    });
  }
  if (prefix.length > MAX_PREFIX_LENGTH || CONTROL.test(prefix)) {
    throw new ValidationError(
      `${name} must be at most ${MAX_PREFIX_LENGTH} characters without control characters`,
      { option: name },
    );
  }
  return prefix;
}

// The one-shot `crypto.hash` (Node >= 20.12) costs about half of a Hash object per key.
const oneShot = (nodeCrypto as { hash?: (algorithm: string, data: string) => string }).hash;

/** Hex SHA-256 of a string (UTF-8). */
export function sha256Hex(text: string): string {
  if (oneShot !== undefined) return oneShot('sha256', text);
  return nodeCrypto.createHash('sha256').update(text).digest('hex');
}

/**
 * Wraps `tag` in a Redis Cluster hash tag, so every key that carries it maps to one slot.
 * Braces inside the tag are replaced: Redis hashes only up to the first `}`.
 */
export function hashTag(tag: string): string {
  return `{${tag.replace(/[{}]/g, '_')}}`;
}
