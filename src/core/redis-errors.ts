// How a Redis client's errors are told apart: the server is not there, or refused us.

import { NET_CODES } from './net-codes.js';

// Messages (lower-cased) and error codes that mean "the server is not there for us", as opposed
// to a reply error about the command itself.
const CONNECTION_MESSAGES = [
  'connection is closed',
  "stream isn't writeable",
  'command timed out',
  'reached the max retries per request',
  'failed to refresh slots cache',
  'none of startup nodes is available',
  'clusterdown',
  'noauth',
  'wrongpass',
  'invalid password',
  'invalid username-password',
  'loading',
  'masterdown',
  'connect etimedout',
  "cluster isn't ready",
  'connection in subscriber mode',
];
const AUTH_MESSAGES = ['noauth', 'wrongpass', 'invalid password', 'invalid username-password'];

/** True when `e` means the Redis server could not be reached or refused the connection. */
export function isRedisConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && NET_CODES.has(code)) return true;
  const msg = e.message.toLowerCase();
  return CONNECTION_MESSAGES.some((m) => msg.startsWith(m) || msg.includes(m));
}

/** True when `e` is Redis refusing the credentials (NOAUTH, WRONGPASS, ...). */
export function isAuthError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const msg = e.message.toLowerCase();
  return AUTH_MESSAGES.some((m) => msg.includes(m));
}
