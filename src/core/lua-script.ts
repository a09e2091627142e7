import { createHash } from 'node:crypto';
import { toBackendError } from './backend-errors.js';
import { type RedisClient, describeClient } from './connection.js';

/** A Lua script argument. */
export type LuaArg = string | number;

/**
 * A Lua script run by EVALSHA (only the 40-byte hash travels), falling back to EVAL when the
 * node does not have it cached. The fallback is per call, not a one-time SCRIPT LOAD: every
 * Cluster master has its own script cache, and a restart, a failover or SCRIPT FLUSH empties
 * one; EVAL then caches it on the node that owns the keys.
 *
 * Every key a script touches must be passed in `keys` and, on a Cluster, share one hash slot.
 *
 * Errors come out typed (see `toBackendError`): a READONLY/OOM/LOADING/... reply or a lost
 * connection as `BackendUnavailableError`, any other reply error (WRONGTYPE, an error raised by
 * the script) as `BackendError`; neither carries the keys or argument values ioredis attaches.
 */
export class LuaScript {
  /** SHA-1 of the source, as Redis names cached scripts. */
  readonly sha: string;

  /**
   * @param source The Lua source.
   * @param name Names the script in error messages (e.g. `'session append'`); defaults to the
   * first 8 characters of its SHA-1.
   */
  constructor(
    readonly source: string,
    readonly name?: string,
  ) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script with `keys` (KEYS[]) and `args` (ARGV[]). */
  async run(
    client: RedisClient,
    keys: readonly string[],
    args: readonly LuaArg[],
  ): Promise<unknown> {
    try {
      try {
        return await client.evalsha(this.sha, keys.length, ...keys, ...args);
      } catch (e) {
        if (e instanceof Error && e.message.startsWith('NOSCRIPT')) {
          return await client.eval(this.source, keys.length, ...keys, ...args);
        }
        throw e;
      }
    } catch (e) {
      const { description, secrets } = describeClient(client);
      throw toBackendError(e, {
        op: `script ${this.name ?? this.sha.slice(0, 8)}`,
        target: description,
        secrets,
        args: [...keys, ...args],
      });
    }
  }
}
