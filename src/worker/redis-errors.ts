import { AzscaleError, BackendUnavailableError } from '../core/errors.js';

/** Longest part of a Redis reply kept in an error message. */
const MAX_REPLY_CHARS = 200;

/**
 * Turns a raw Redis reply error (OOM, READONLY, a script error, ...) into a typed
 * `BackendUnavailableError` that carries no command arguments: ioredis attaches the command and
 * its arguments (task data, results) to a `ReplyError`, and a logger that prints the error or its
 * `cause` would write them out. Only the reply's first line is kept, and the cause is a bare
 * `Error` with that line. Typed errors pass through unchanged.
 *
 * (A local sanitiser: the shared one in src/core replaces it when it lands.)
 */
export function sanitizeRedisError(e: unknown, operation: string): unknown {
  if (e instanceof AzscaleError || !(e instanceof Error)) return e;
  const reply = (e.message.split('\n')[0] ?? '').slice(0, MAX_REPLY_CHARS);
  const kind = /^[A-Z][A-Z_-]+\b/.exec(reply)?.[0] ?? 'ERR';
  const cause = new Error(reply);
  cause.name = e.name === 'ReplyError' ? 'ReplyError' : 'Error';
  return new BackendUnavailableError(`Redis refused ${operation}: ${reply}`, {
    cause,
    context: { backend: 'redis', operation, reply: kind },
  });
}
