import { createHash } from 'node:crypto';
import { toBackendError } from './backend-errors.js';
import { type RedisClient, describeClient } from './connection.js';

/** A Lua script argument. */
export type LuaArg = string | number;

/**
 * The reply code a script run under {@link LuaScript.checkDeclaredKeys} fails with when it
 * touches a key it did not declare in KEYS (`context.replyCode` of the `BackendError`).
 */
export const UNDECLARED_KEY_CODE = 'AZS_UNDECLARED_KEY';

// Shadows `redis` for the script body with a table whose call/pcall first ask the server which
// arguments of the command are keys (COMMAND GETKEYS, so no hand-kept table of key positions)
// and fail when one is not in KEYS. A local, not a change to the global table: Redis 7 may keep
// globals read-only. One line, so the script's own line numbers in error messages stay right.
const KEY_CHECK_PRELUDE = [
  'local __azs_redis = redis',
  'local __azs_declared = {}',
  'for _, k in ipairs(KEYS) do __azs_declared[k] = true end',
  'local function __azs_check(...)',
  "  local ks = __azs_redis.pcall('COMMAND', 'GETKEYS', ...)",
  "  if type(ks) ~= 'table' or ks.err then return end",
  '  for _, k in ipairs(ks) do',
  '    if not __azs_declared[k] then',
  `      error({ err = '${UNDECLARED_KEY_CODE} ' .. tostring((...)) .. ' touches ' .. k .. ', which is not in KEYS' })`,
  '    end',
  '  end',
  'end',
  'local redis = setmetatable({',
  '  call = function(...) __azs_check(...) return __azs_redis.call(...) end,',
  '  pcall = function(...) __azs_check(...) return __azs_redis.pcall(...) end,',
  '}, { __index = __azs_redis })',
].join(' ');

function withKeyCheck(source: string): string {
  // A shebang (`#!lua flags=...`) must stay the first line.
  if (source.startsWith('#!')) {
    const nl = source.indexOf('\n');
    return `${source.slice(0, nl + 1)}${KEY_CHECK_PRELUDE} ${source.slice(nl + 1)}`;
  }
  return `${KEY_CHECK_PRELUDE} ${source}`;
}

/**
 * Milliseconds a script refused by a Cluster before it ran (TRYAGAIN while its slot migrates,
 * CLUSTERDOWN while a slot has no owner) is retried, on top of ioredis's own redirections.
 */
export const RESHARD_RETRY_MS = 10_000;
const RESHARD_FIRST_DELAY_MS = 50;
const RESHARD_MAX_DELAY_MS = 500;

function isCluster(c: RedisClient): boolean {
  return (c as { isCluster?: boolean }).isCluster === true;
}

/**
 * True for a reply that says the script was not run: TRYAGAIN, or CLUSTERDOWN, as such or as
 * the last error of ioredis's "Too many Cluster redirections".
 */
function isRefusedBeforeRun(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const m = e.message;
  if (m.startsWith('TRYAGAIN') || m.startsWith('CLUSTERDOWN')) return true;
  return (
    m.startsWith('Too many Cluster redirections') &&
    /Last error: \S*:? ?(TRYAGAIN|CLUSTERDOWN|MOVED|ASK)\b/.test(m)
  );
}

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
  /**
   * Test switch for the rule "every key a script reads or writes is declared in KEYS" (what
   * Redis Cluster, Valkey and stores that enforce declared keys require). While `true`, every
   * script runs with a prelude that wraps `redis.call`/`redis.pcall` and fails the script with
   * {@link UNDECLARED_KEY_CODE} when a command touches a key not in KEYS. Costs one extra
   * command per call: for tests only. Starts `true` when the environment has
   * `AZS_LUA_CHECK_KEYS=1`.
   * @default false
   */
  static checkDeclaredKeys = process.env.AZS_LUA_CHECK_KEYS === '1';

  /** SHA-1 of the source, as Redis names cached scripts. */
  readonly sha: string;
  private checked: { source: string; sha: string } | undefined;

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
    let { source, sha } = this;
    if (LuaScript.checkDeclaredKeys) {
      this.checked ??= (() => {
        const src = withKeyCheck(this.source);
        return { source: src, sha: createHash('sha1').update(src).digest('hex') };
      })();
      ({ source, sha } = this.checked);
    }
    try {
      let deadline = 0;
      let delay = RESHARD_FIRST_DELAY_MS;
      for (;;) {
        try {
          try {
            return await client.evalsha(sha, keys.length, ...keys, ...args);
          } catch (e) {
            if (e instanceof Error && e.message.startsWith('NOSCRIPT')) {
              return await client.eval(source, keys.length, ...keys, ...args);
            }
            throw e;
          }
        } catch (e) {
          // A Cluster refused the script before running it: its keys are split between two
          // nodes while their slot migrates (TRYAGAIN), or the slot has no owner for a moment.
          // ioredis gives up after its redirection budget (16 x 100 ms); a slot with many keys
          // takes longer to move, so keep trying, backing off, for up to RESHARD_RETRY_MS.
          if (!isCluster(client) || !isRefusedBeforeRun(e)) throw e;
          const now = performance.now();
          if (deadline === 0) deadline = now + RESHARD_RETRY_MS;
          if (now + delay > deadline) throw e;
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, RESHARD_MAX_DELAY_MS);
        }
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
