// Not re-exported by core/index: shared by the Redis and PostgreSQL error classifiers only.

/** Socket-level codes Node sets when a server (Redis or PostgreSQL) is not there. */
export const NET_CODES: ReadonlySet<string> = new Set([
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
