/**
 * The cache's Lua scripts. Every key a script reads or writes is declared in KEYS (so they run
 * on Redis Cluster, Valkey and stores that enforce declared keys); ARGV holds only values.
 * @internal
 */

/** A script and how many of its arguments are keys. */
export interface CacheScript {
  readonly numKeys: number;
  readonly source: string;
}

/** KEYS[1] lock; ARGV[1] holder's token. Compare-and-delete: only the holder removes the lock. */
export const RELEASE_LOCK: CacheScript = {
  numKeys: 1,
  source: `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`,
};

/** Every script above, by name (for the declared-keys check in the tests). */
export const CACHE_SCRIPTS: Readonly<Record<string, CacheScript>> = { releaseLock: RELEASE_LOCK };
