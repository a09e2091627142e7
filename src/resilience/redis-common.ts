import type { RedisConnection } from '../core/connection.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { validatePrefix } from '../core/keys.js';
import type { LuaScript } from '../core/lua-script.js';

/**
 * What the Redis implementations of the resilience contracts share. Every operation is one Lua
 * script over keys that share a hash tag, so each runs atomically on one Cluster slot. Scripts
 * read the clock with `TIME` (allowed since Redis 5 with effect replication), so the fleet agrees
 * on one clock: the server's.
 */

/** Options of a resilience Redis store: `new RedisSemaphoreStore(connection, { prefix })`. */
export interface RedisStoreOptions {
  /** Key prefix. @default the store's own (`azs:breaker:`, `azs:limit:`, `azs:rate:`) */
  prefix?: string;
  /**
   * Close the connection in `close()`. A connection made from a client the user passed leaves
   * that client open either way.
   * @default true
   */
  ownsConnection?: boolean;
}

/**
 * The `(connection, { prefix })` options of a store, also accepting the 0.1.0 shape
 * `(connection, prefix, ownsConnection)`.
 */
export function storeOptions(
  options: RedisStoreOptions | string | undefined,
  ownsConnection: boolean | undefined,
  defaultPrefix: string,
): { prefix: string; ownsConnection: boolean } {
  if (typeof options === 'string' || options === undefined) {
    return {
      prefix: options === undefined ? defaultPrefix : validatePrefix(options, 'prefix'),
      ownsConnection: ownsConnection ?? true,
    };
  }
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(
      `store options must be an object, received ${describeValue(options)}`,
      { option: 'options' },
    );
  }
  return {
    prefix: options.prefix === undefined ? defaultPrefix : validatePrefix(options.prefix, 'prefix'),
    ownsConnection: options.ownsConnection ?? ownsConnection ?? true,
  };
}

/** Lua prelude: `now`, the server clock in milliseconds. */
export const NOW_MS = `
local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
`;

/** Runs one script through the connection (errors mapped to azscale's). */
export async function exec(
  conn: RedisConnection,
  op: string,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  return conn.run(op, (c) => script.run(c, keys, args));
}
