import { AzscaleError, BackendUnavailableError } from '../core/errors.js';

/**
 * Redis reply errors, made safe to show. ioredis attaches the failed command with its arguments
 * (cache values, keys) to a `ReplyError`, and a logger that prints the error prints them too.
 * This keeps the reply's code and a message with quoted text removed, and nothing else.
 *
 * Local to the cache until the central helper in src/core replaces it.
 * @internal
 */

// Replies that mean "this server cannot serve now": the cache treats them like an outage.
const UNAVAILABLE = new Set([
  'READONLY',
  'OOM',
  'LOADING',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'BUSY',
  'NOREPLICAS',
  'MISCONF',
]);

// Command names are kept ('set'); any other quoted text could be a value and is dropped.
const QUOTED = /'([^']*)'|"([^"]*)"/g;
const COMMAND_NAME = /^[a-z][a-z_|.-]{0,31}$/i;

/** True for an error ioredis made from a Redis error reply. */
export function isRedisReplyError(e: unknown): e is Error {
  return (
    e instanceof Error &&
    (e.name === 'ReplyError' || (typeof e === 'object' && 'command' in (e as object)))
  );
}

/** The reply's text without arguments or values, at most 200 characters. */
export function safeReplyMessage(message: string): string {
  let m = message.split(/,? with args beginning with:/)[0] ?? '';
  m = m.replace(QUOTED, (all, a: string | undefined, b: string | undefined) => {
    const inner = a ?? b ?? '';
    return COMMAND_NAME.test(inner) ? all : "'…'";
  });
  // Script errors quote the script's own words after the location; keep the location only.
  m = m.replace(/(@user_script:\d+:).*$/s, '$1 …');
  return m.length > 200 ? `${m.slice(0, 200)}…` : m;
}

/**
 * `e` as an azscale error if it is a Redis reply error (else `e` unchanged): a
 * `BackendUnavailableError` for replies that mean the server cannot serve now (READONLY, OOM,
 * LOADING, ...), an `AzscaleError` otherwise; context `{ backend, operation, reply }`, and a
 * `cause` that carries only the safe message.
 */
export function sanitizeReplyError(e: unknown, operation: string): unknown {
  if (e instanceof AzscaleError || !isRedisReplyError(e)) return e;
  const message = safeReplyMessage(e.message);
  const reply = /^[A-Z]+/.exec(message)?.[0] ?? 'ERR';
  const cause = new Error(message);
  cause.name = 'ReplyError';
  const options = { cause, context: { backend: 'redis', operation, reply } };
  const text = `Redis replied with an error to ${operation}: ${message}`;
  return UNAVAILABLE.has(reply)
    ? new BackendUnavailableError(text, options)
    : new AzscaleError(text, options);
}
