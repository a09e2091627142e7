/**
 * One place that turns what ioredis or pg threw into an azscale error fit to reach a user and
 * their logger. ioredis attaches the failed command (`command: { name, args }`) to every reply
 * error, so a raw error that escapes carries session text, cached values or an AUTH password
 * into whatever logs it; pg errors carry `detail` ("Key (email)=(a@b.c) already exists") and
 * some messages quote the rejected value. What comes out of here has none of that: a typed
 * error whose message keeps the server's error code and wording, and a `cause` that is a fresh
 * Error with only name, message and code.
 */
import {
  AzscaleError,
  BackendError,
  BackendUnavailableError,
  type AzscaleErrorOptions,
} from './errors.js';
import { NET_CODES } from './net-codes.js';

/** What {@link toBackendError} knows about the failed call. */
export interface BackendErrorOptions {
  /** The operation, for the message and `context.operation` (e.g. `'session append'`). */
  op: string;
  /** Which backend answered. @default 'redis' */
  backend?: 'redis' | 'postgres';
  /** Host/port description for the message; must not hold a password. */
  target?: string;
  /** Strings to mask wherever they appear (passwords). */
  secrets?: readonly string[];
  /** Values sent with the command (beyond those ioredis attached), masked wherever they appear. */
  args?: readonly unknown[];
}

// Reply error codes that mean "this server cannot serve us now" rather than "this command is
// wrong": a replica that refuses writes, a full or loading server, a cluster or master that is
// down, a script that keeps the server busy, a refused login.
const REDIS_UNAVAILABLE = new Set([
  'READONLY',
  'OOM',
  'LOADING',
  'MASTERDOWN',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'BUSY',
  'NOREPLICAS',
  'MISCONF',
  'NOAUTH',
  'WRONGPASS',
]);

// ioredis's own wording for a connection that is gone or never came (no server reply involved).
const REDIS_CLIENT_MESSAGES = [
  'connection is closed',
  "stream isn't writeable",
  'command timed out',
  'reached the max retries per request',
  'failed to refresh slots cache',
  'none of startup nodes is available',
  "cluster isn't ready",
  'connection in subscriber mode',
];

const MAX_MESSAGE = 300;

// In a Redis reply, quoted words other than command names ('set') could be values.
const QUOTED = /'([^']*)'|"([^"]*)"/g;
const COMMAND_NAME = /^[a-z][a-z_|.-]{0,31}$/i;

/**
 * A Redis reply's text with what may hold values removed: the "with args beginning with: ..."
 * echo, quoted words other than command names, and a script error's text after its location.
 */
export function safeRedisReplyText(message: string): string {
  let m = message.replace(/,?\s*with args beginning with:.*$/s, '');
  m = m.replace(QUOTED, (all, a: string | undefined, b: string | undefined) => {
    const inner = a ?? b ?? '';
    return COMMAND_NAME.test(inner) ? all : "'…'";
  });
  // Script errors quote the script's own words after the location; keep the location only.
  return m.replace(/(@user_script:\d+:).*$/s, '$1 …');
}
const MIN_MASKED_LENGTH = 4;

/** The leading all-caps code of a Redis reply error (`WRONGTYPE`, `OOM`, `ERR`), if any. */
export function redisReplyCode(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  const m = /^([A-Z][A-Z_-]{1,31})(?:\s|$)/.exec(e.message);
  return m ? m[1] : undefined;
}

/** The fields of an error a PostgreSQL server sent, as pg's `DatabaseError` carries them. */
export interface PgServerErrorFields {
  /** The SQLSTATE, e.g. `23505` (unique violation) or `25006` (read-only transaction). */
  code: string;
  /** The server's severity, e.g. `ERROR` or `FATAL`. */
  severity: string;
}

/** True when `e` is an error a PostgreSQL server sent (pg's DatabaseError: a SQLSTATE `code`). */
export function isPgServerError(e: unknown): e is Error & PgServerErrorFields {
  if (!(e instanceof Error)) return false;
  const x = e as { code?: unknown; severity?: unknown };
  // pg's DatabaseError carries `severity`; duck-typed so a pool from another pg copy also works.
  return typeof x.code === 'string' && typeof x.severity === 'string';
}

/**
 * SQLSTATEs that mean the session is gone or the server will not serve us: class 08 (connection
 * exception), 57P01-57P05 (shutdown, crash, cannot connect now, idle timeouts), 53300 (too many
 * connections), class 28 (authentication), 3D000 (no such database).
 */
function isPgConnectionState(sqlState: string): boolean {
  return (
    sqlState.startsWith('08') ||
    sqlState.startsWith('57P') ||
    sqlState.startsWith('28') ||
    sqlState === '53300' ||
    sqlState === '3D000'
  );
}

// pg's own wording for a connection that is gone (no server reply involved).
const PG_CLIENT_MESSAGES = [
  'connection terminated',
  'not queryable',
  'connection error',
  'query read timeout',
  'server closed the connection',
];

/**
 * True when `e` means a PostgreSQL server could not be reached or dropped the session: a socket
 * error, a connection-class SQLSTATE, or pg's wording for a lost connection. A statement the
 * server refused (any other SQLSTATE) is not one, nor is pg-pool's wait for a free client.
 */
export function isPgConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (isPgServerError(e)) return isPgConnectionState(e.code);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && NET_CODES.has(code)) return true;
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  if (e instanceof AggregateError && e.errors.some(isPgConnectionError)) return true;
  const m = e.message.toLowerCase();
  return PG_CLIENT_MESSAGES.some((x) => m.includes(x));
}

/** pg-pool's wording when no client became free within `connectionTimeoutMillis`. */
export function isPgPoolWaitTimeout(e: unknown): boolean {
  return e instanceof Error && e.message === 'timeout exceeded when trying to connect';
}

function stringsOf(values: readonly unknown[] | undefined): string[] {
  if (!values) return [];
  const out: string[] = [];
  for (const v of values) {
    if (typeof v === 'string') out.push(v);
    else if (Buffer.isBuffer(v)) out.push(v.toString('utf8'));
    else if (typeof v === 'number' || typeof v === 'bigint') out.push(String(v));
  }
  return out;
}

/**
 * The error's message with every command argument, value and secret masked, Redis's
 * "with args beginning with: ..." echo cut, a value PostgreSQL quotes at the end masked, and
 * the length capped.
 */
export function sanitizeMessage(e: unknown, options: Omit<BackendErrorOptions, 'op'> = {}): string {
  let msg = e instanceof Error ? e.message : String(e);
  msg = msg.replace(/,?\s*with args beginning with:.*$/s, '');
  const cmd = e instanceof Error ? (e as { command?: { args?: unknown } }).command : undefined;
  const masked = [
    ...stringsOf(Array.isArray(cmd?.args) ? cmd.args : undefined),
    ...stringsOf(options.args),
  ].filter((s) => s.length >= MIN_MASKED_LENGTH);
  // Longest first, so a value that contains another is masked whole.
  masked.sort((a, b) => b.length - a.length);
  for (const s of masked) if (msg.includes(s)) msg = msg.split(s).join('***');
  for (const s of options.secrets ?? []) if (s && msg.includes(s)) msg = msg.split(s).join('***');
  if (e instanceof Error && !isPgServerError(e) && redisReplyCode(e) !== undefined) {
    msg = safeRedisReplyText(msg);
  }
  if (e instanceof Error && isPgServerError(e)) {
    // invalid input syntax for type integer: "abc" / invalid input value for enum mood: "x"
    msg = msg.replace(/: ".*"$/s, ': "***"');
  }
  if (msg.length > MAX_MESSAGE) msg = `${msg.slice(0, MAX_MESSAGE)}…`;
  return msg;
}

/**
 * A copy of `e` that is safe to log: an Error with the same name, the sanitised message and the
 * string `code` (ioredis's socket code, or PostgreSQL's SQLSTATE), nothing else: no `command`,
 * no `detail`, no query, no stack frames of the original.
 */
export function sanitizeError(e: unknown, options: Omit<BackendErrorOptions, 'op'> = {}): Error {
  const copy = new Error(sanitizeMessage(e, options));
  if (e instanceof Error) {
    copy.name = e.name;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') (copy as Error & { code?: string }).code = code;
  }
  // The copy's stack would name this file; the message is all a reader needs.
  copy.stack = `${copy.name}: ${copy.message}`;
  return copy;
}

/** True when `e` means the backend was not there for us (no reply about the command itself). */
export function isBackendUnavailableCause(
  e: unknown,
  backend: 'redis' | 'postgres' = 'redis',
): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && NET_CODES.has(code)) return true;
  if (e instanceof AggregateError && e.errors.some((x) => isBackendUnavailableCause(x, backend)))
    return true;
  if (backend === 'postgres') {
    // 25006 (read-only transaction: a standby) is "not there for us" too, for a writer.
    if (isPgServerError(e)) return isPgConnectionState(e.code) || e.code === '25006';
    return (
      isPgConnectionError(e) ||
      e.message.toLowerCase().includes('timeout exceeded when trying to connect')
    );
  }
  const reply = redisReplyCode(e);
  if (reply && REDIS_UNAVAILABLE.has(reply)) return true;
  const m = e.message.toLowerCase();
  return REDIS_CLIENT_MESSAGES.some((x) => m.includes(x));
}

/**
 * Maps anything a Redis or PostgreSQL call threw to an azscale error whose message, context and
 * `cause` carry no command arguments, values or passwords:
 * - an azscale error passes through unchanged;
 * - "not there for us" (refused, reset, timed out, READONLY, OOM, LOADING, MASTERDOWN,
 *   CLUSTERDOWN, BUSY, a failed login; PostgreSQL classes 08/57P/28, 53300, 25006) becomes
 *   {@link BackendUnavailableError};
 * - any other reply error (WRONGTYPE, a script error, a constraint violation) becomes
 *   {@link BackendError}, with the reply code (`context.replyCode`, also `context.reply`) or
 *   SQLSTATE (`context.sqlState`).
 *
 * @example
 * try { await client.set(key, value) } catch (e) { throw toBackendError(e, { op: 'cache set' }) }
 */
export function toBackendError(err: unknown, options: BackendErrorOptions): AzscaleError {
  if (err instanceof AzscaleError) return err;
  const backend = options.backend ?? 'redis';
  const label = backend === 'redis' ? 'Redis' : 'PostgreSQL';
  const who = options.target ? `${label} (${options.target})` : label;
  const cause = sanitizeError(err, options);
  const context: Record<string, unknown> = { backend, operation: options.op };
  if (options.target) context.target = options.target;
  if (err instanceof Error) {
    if (backend === 'postgres' && isPgServerError(err)) context.sqlState = err.code;
    const reply = backend === 'redis' ? redisReplyCode(err) : undefined;
    if (reply) {
      context.replyCode = reply;
      // The name the cache, session and worker documented before this helper existed.
      context.reply = reply;
    }
  }
  const opts: AzscaleErrorOptions = { cause, context };
  if (isBackendUnavailableCause(err, backend)) {
    return new BackendUnavailableError(
      `${who} failed during ${options.op}: ${cause.message}`,
      opts,
    );
  }
  // The server's text comes first, as in the raw error, so code that tested
  // `message.startsWith('WRONGTYPE')` on the raw error still works on this one.
  return new BackendError(`${cause.message} (${who} error reply to ${options.op})`, opts);
}

/**
 * For modules whose contract is "every Redis reply error is a {@link BackendUnavailableError}"
 * (session, worker): a {@link BackendError} made from a Redis reply (WRONGTYPE, a script error)
 * as a `BackendUnavailableError` with the same message, context and sanitised `cause`; any other
 * error unchanged.
 */
export function replyErrorAsUnavailable(e: AzscaleError): AzscaleError {
  if (
    !(e instanceof BackendError) ||
    e.context.backend !== 'redis' ||
    typeof e.context.replyCode !== 'string'
  ) {
    return e;
  }
  return new BackendUnavailableError(e.message, { cause: e.cause, context: { ...e.context } });
}
