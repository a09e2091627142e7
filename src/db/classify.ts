/**
 * Sorting pg errors into "the statement failed" (SQL errors: pass through) and "the node is not
 * there for us" (connection errors: count against the node, retry a read elsewhere, surface as
 * BackendUnavailableError).
 */

/** Network-level codes Node sets on socket errors. */
const NET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EAI_AGAIN',
  'ECONNABORTED',
  'ENOENT', // a Unix socket path that is not there
]);

/**
 * SQLSTATEs that mean the session is gone or the server will not serve us: class 08 (connection
 * exception), 57P01-57P05 (shutdown, crash, cannot connect now, idle timeouts), 53300 (too many
 * connections), class 28 (authentication), 3D000 (no such database).
 */
function isConnectionSqlState(code: string): boolean {
  return (
    code.startsWith('08') ||
    code.startsWith('57P') ||
    code.startsWith('28') ||
    code === '53300' ||
    code === '3D000'
  );
}

/** True when `e` is an error the server sent about a statement (it carries a SQLSTATE). */
export function isServerError(e: unknown): e is Error & { code: string; severity?: string } {
  if (!(e instanceof Error)) return false;
  const x = e as { code?: unknown; severity?: unknown };
  // pg's DatabaseError carries `severity`; duck-typed so a pool from another pg copy also works.
  return typeof x.code === 'string' && typeof x.severity === 'string';
}

/** True when `e` means the node could not be reached or dropped the session. */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (isServerError(e)) return isConnectionSqlState(e.code);
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && NET_CODES.has(code)) return true;
  // Node's happy-eyeballs connect reports an AggregateError of per-address failures.
  if (e instanceof AggregateError && e.errors.some(isConnectionError)) return true;
  const msg = e.message.toLowerCase();
  return (
    msg.includes('connection terminated') ||
    msg.includes('not queryable') ||
    msg.includes('connection error') ||
    msg.includes('query read timeout') ||
    msg.includes('server closed the connection')
  );
}

/** pg-pool's wording when no client became free within `connectionTimeoutMillis`. */
export function isPoolWaitTimeout(e: unknown): boolean {
  return e instanceof Error && e.message === 'timeout exceeded when trying to connect';
}

/** pg-pool's wording for a pool that was ended. */
export function isPoolEnded(e: unknown): boolean {
  return e instanceof Error && /after calling end on the pool|pool is ending/i.test(e.message);
}
