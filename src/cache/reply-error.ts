import { safeRedisReplyText } from '../core/backend-errors.js';

/**
 * Redis reply texts as the cache shows them. Reply errors themselves are mapped by core
 * (`toBackendError` in src/core/backend-errors.ts, applied by `RedisConnection.mapError` and
 * `LuaScript.run`); this keeps the cache's documented text helper.
 * @internal
 */

/** True for an error ioredis made from a Redis error reply. */
export function isRedisReplyError(e: unknown): e is Error {
  return (
    e instanceof Error &&
    (e.name === 'ReplyError' || (typeof e === 'object' && 'command' in (e as object)))
  );
}

/** The reply's text without arguments or values, at most 200 characters. */
export function safeReplyMessage(message: string): string {
  const m = safeRedisReplyText(message);
  return m.length > 200 ? `${m.slice(0, 200)}…` : m;
}
