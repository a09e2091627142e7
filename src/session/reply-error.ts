import { AzscaleError, BackendUnavailableError } from '../core/errors.js';

/**
 * Redis reply errors as the session module throws them. ioredis attaches the failed command with
 * its arguments (the session text, a message) to a `ReplyError`; a logger that prints the error
 * prints them too. Every reply error leaves here as a typed `AZS_*` error whose message, context
 * and `cause` hold the reply's code and the operation, never an argument.
 *
 * A local helper until the central one in src/core lands (issue 13 gives it to core); the
 * session module then calls that instead.
 */

/** Reply codes that say the server cannot take the command now (a failover, memory, loading). */
const REFUSALS = new Set([
  'READONLY',
  'OOM',
  'LOADING',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'BUSY',
  'NOREPLICAS',
  'MISCONF',
  'MOVED',
  'ASK',
]);

function stripArguments(e: unknown): void {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 8; depth++) {
    const o = c as unknown as Record<string, unknown>;
    if ('command' in o) delete o.command;
    if ('args' in o) delete o.args;
    if ('previousErrors' in o) delete o.previousErrors;
    c = (c as Error & { cause?: unknown }).cause;
  }
}

function isReplyError(e: unknown): e is Error {
  return e instanceof Error && (e.name === 'ReplyError' || 'command' in e);
}

/**
 * `e` as the session store throws it: reply errors become {@link BackendUnavailableError} with
 * the reply code in `context.reply`; azscale errors keep their class but lose any command
 * arguments along their `cause` chain; anything else passes through.
 */
export function sanitizeReplyError(e: unknown, operation: string, key: string): unknown {
  if (e instanceof AzscaleError) {
    stripArguments(e);
    return e;
  }
  if (!isReplyError(e)) return e;
  // The first word of a Redis error reply is its code (ERR, OOM, READONLY, WRONGTYPE, ...).
  const first = /^[A-Z][A-Z_-]*/.exec(e.message)?.[0] ?? 'ERR';
  // Script errors name the script and line; the reply itself never holds arguments, but cut it
  // short and keep it out of the message anyway.
  const cause = new Error(e.message.split('\n')[0]?.slice(0, 200));
  cause.name = 'ReplyError';
  const refused = REFUSALS.has(first);
  return new BackendUnavailableError(
    `Redis ${refused ? 'refused' : 'failed'} ${operation} on ${key} (${first})`,
    { cause, context: { backend: 'redis', operation, key, reply: first } },
  );
}
