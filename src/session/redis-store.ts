import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import {
  type RedisClient,
  RedisConnection,
  isRedisConnectionError,
  type RedisConnectionOptions,
  type RedisInput,
} from '../core/connection.js';
import { SerializationError, ValueTooLargeError } from '../core/errors.js';
import { assertOneOf } from '../core/validate.js';
import { appendToSessionText } from './splice.js';
import type { SessionAppendOptions, SessionStore } from './store.js';
import { LuaScript } from '../core/lua-script.js';

/**
 * Redis backend. Every operation touches one key, so it works unchanged on Redis Cluster (a
 * single-key script always runs on the node that owns the key's slot) and keeps the seed's key
 * layout: no version or lock keys beside `session:{id}`.
 */

// Compare-and-set on the value itself, so any writer (a Python service using SETEX, redis-cli)
// is caught, not only writers that know of azscale. A small expected value is compared as is
// (a memcmp on the server); a large one travels as its SHA-1 so it is not sent twice.
// ARGV: [1] '0' the key must be absent, '1' compare SHA-1, '2' compare text; [2] the SHA-1 or
// the text; [3] new text; [4] expiry in ms.
const CAS_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
local mode = ARGV[1]
if mode == '0' then
  if cur then return 0 end
elseif not cur then
  return 0
elseif mode == '2' then
  if cur ~= ARGV[2] then return 0 end
elseif redis.sha1hex(cur) ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
`;

/** Expected values up to this many UTF-16 units are sent whole to the CAS script. */
const CAS_INLINE_MAX = 16 * 1024;

// Atomic append. cjson validates the stored text, but the new value is built by splicing the
// original text, not by re-encoding a decoded table: cjson would turn empty arrays into {} and
// round numbers to 14 digits, silently rewriting fields this call never meant to touch.
// The scanner below only walks the top-level object and the messages array; it may assume
// well-formed JSON because cjson.decode accepted it.
// ARGV: [1] JSON of the new items, comma-separated; [2] expiry in ms; [3] max items (0: no cap);
// [4] max bytes; [5] number of new items (at most the cap).
// Returns {0, newLength} or {code, detail}: 1 not JSON, 2 not an object, 3 messages not an
// array, 4 too large (detail: bytes), 5 the walk and cjson disagree (escaped key spelling).
// The default 'optimistic' mode runs this only for a call that lost a compare-and-set race.
const APPEND_SCRIPT = String.raw`
local s = redis.call('GET', KEYS[1])
local item = ARGV[1]
local maxItems = tonumber(ARGV[3])
local count = tonumber(ARGV[5])
local maxBytes = tonumber(ARGV[4])
local out, n
if not s then
  out = '{"messages":[' .. item .. ']}'
  n = count
else
  local ok, d = pcall(cjson.decode, s)
  if not ok then return {1, 0} end
  local find, byte, sub = string.find, string.byte, string.sub
  local function ws(i) return find(s, '[^ \t\r\n]', i) end
  -- Plain (memchr) searches only: Lua's pattern matcher costs about a microsecond per 20 bytes
  -- scanned, which made long histories slow. A quote is escaped when an odd number of
  -- backslashes precedes it.
  local function str_end(i)
    local j = i + 1
    while true do
      local k = find(s, '"', j, true)
      local m = k - 1
      while byte(s, m) == 92 do m = m - 1 end
      if (k - 1 - m) % 2 == 0 then return k end
      j = k + 1
    end
  end
  local function val_end(i)
    local c = byte(s, i)
    if c == 34 then return str_end(i) end
    if c == 123 or c == 91 then
      -- Only the text between strings can hold brackets; it is short, so walk it byte by byte.
      local depth, j = 0, i
      while true do
        local q = find(s, '"', j, true)
        local stop = q and q - 1 or #s
        for p = j, stop do
          local b = byte(s, p)
          if b == 123 or b == 91 then
            depth = depth + 1
          elseif b == 125 or b == 93 then
            depth = depth - 1
            if depth == 0 then return p end
          end
        end
        j = str_end(q) + 1
      end
    end
    local k = find(s, '[,}%] \t\r\n]', i)
    if k then return k - 1 end
    return #s
  end
  local open = ws(1)
  if byte(s, open) ~= 123 then return {2, 0} end
  local vs, ve
  local i = ws(open + 1)
  local empty = byte(s, i) == 125
  if not empty then
    while true do
      local kend = str_end(i)
      local key = sub(s, i + 1, kend - 1)
      i = ws(ws(kend + 1) + 1)
      local e = val_end(i)
      -- Last duplicate wins, as in JSON.parse and Python's json.loads.
      if key == 'messages' then vs, ve = i, e end
      i = ws(e + 1)
      if byte(s, i) == 125 then break end
      i = ws(i + 1)
    end
  end
  if not vs then
    -- cjson sees a messages field the walk did not (a key spelled with escapes): refuse rather
    -- than add a second "messages" key.
    if type(d) == 'table' and d.messages ~= nil then return {5, 0} end
    n = count
    out = sub(s, 1, open) .. '"messages":[' .. item .. ']' .. (empty and '' or ',') .. sub(s, open + 1)
  else
    if byte(s, vs) ~= 91 then return {3, 0} end
    local starts, last = {}, 0
    local j = ws(vs + 1)
    if byte(s, j) ~= 93 then
      while true do
        starts[#starts + 1] = j
        last = val_end(j)
        j = ws(last + 1)
        if byte(s, j) == 93 then break end
        j = ws(j + 1)
      end
    end
    if type(d.messages) ~= 'table' or #d.messages ~= #starts then return {5, 0} end
    n = #starts + count
    local keepFrom = 1
    if maxItems > 0 and n > maxItems then
      keepFrom = n - maxItems + 1
      n = maxItems
    end
    local arr
    if keepFrom > #starts then
      arr = '[' .. item .. ']'
    else
      arr = '[' .. sub(s, starts[keepFrom], last) .. ',' .. item .. ']'
    end
    out = sub(s, 1, vs - 1) .. arr .. sub(s, ve + 1)
  end
end
if #out > maxBytes then return {4, #out} end
redis.call('SET', KEYS[1], out, 'PX', ARGV[2])
return {0, n}
`;

const CAS = new LuaScript(CAS_SCRIPT);
const APPEND = new LuaScript(APPEND_SCRIPT);

/** Options of {@link RedisSessionStore}: connection defaults plus the append strategy. */
export interface RedisSessionStoreOptions extends RedisConnectionOptions {
  /**
   * How `append` stays atomic. `'optimistic'`: GET, splice the text on the client, then a
   * compare-and-set script; a call that loses a race falls back to the server-side splice, so it
   * never fails with a conflict. `'server'`: always the server-side splice (one round trip, but
   * Redis CPU proportional to the session size on every call).
   * @default 'optimistic'
   */
  appendMode?: 'optimistic' | 'server';
}

/**
 * Sessions in Redis (standalone or Cluster) as plain strings at their keys, with the seed's
 * semantics (`SET ... PX`, i.e. SETEX). Atomic operations are Lua scripts over the single key.
 */
export class RedisSessionStore implements SessionStore {
  /** The connection (ownership rules: {@link RedisConnection}). */
  readonly connection: RedisConnection;

  /** How {@link append} runs (see {@link RedisSessionStoreOptions.appendMode}). */
  readonly appendMode: 'optimistic' | 'server';
  private pending: Promise<RedisClient> | undefined;
  private readonly batchWrites: boolean;
  private corked = false;
  private inflight = 0;
  private watched: RedisClient | undefined;
  private down: Error | undefined;

  /**
   * @param redis A URL, an ioredis client (never closed by us), `{ nodes }` for a Cluster, or a
   *   {@link RedisConnection} (closed by {@link close} when it owns its client).
   * @param options Connection defaults (timeouts in seconds, used when `redis` is not a
   *   connection) and the append mode.
   */
  constructor(redis: RedisInput | RedisConnection, options: RedisSessionStoreOptions = {}) {
    const { appendMode, ...connectionOptions } = options;
    this.connection =
      redis instanceof RedisConnection
        ? redis
        : new RedisConnection(redis, connectionOptions, 'redis');
    this.batchWrites = this.connection.owned && !this.connection.isCluster;
    this.appendMode =
      appendMode === undefined
        ? 'optimistic'
        : assertOneOf(appendMode, 'appendMode', ['optimistic', 'server']);
  }

  async get(key: string, touchTtlMs?: number): Promise<string | null> {
    return this.exec('session get', key, (c) =>
      touchTtlMs === undefined
        ? c.get(key)
        : c.getex(key, 'PX', Math.max(1, Math.round(touchTtlMs))),
    );
  }

  async set(key: string, text: string, ttlMs: number): Promise<void> {
    await this.exec('session set', key, (c) =>
      c.set(key, text, 'PX', Math.max(1, Math.round(ttlMs))),
    );
  }

  async delete(key: string): Promise<boolean> {
    return this.exec('session delete', key, async (c) => (await c.del(key)) === 1);
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    return this.exec(
      'session expire',
      key,
      async (c) => (await c.pexpire(key, Math.max(1, Math.round(ttlMs)))) === 1,
    );
  }

  async ttl(key: string): Promise<number | null> {
    return this.exec('session ttl', key, async (c) => {
      const ms = await c.pttl(key);
      return ms === -2 ? null : ms;
    });
  }

  async compareAndSet(
    key: string,
    expected: string | null,
    text: string,
    ttlMs: number,
  ): Promise<boolean> {
    const ms = Math.max(1, Math.round(ttlMs));
    const args =
      expected === null
        ? ['0', '', text, ms]
        : expected.length <= CAS_INLINE_MAX
          ? ['2', expected, text, ms]
          : ['1', createHash('sha1').update(expected).digest('hex'), text, ms];
    return this.exec(
      'session compare-and-set',
      key,
      async (c) => (await CAS.run(c, [key], args)) === 1,
    );
  }

  async append(key: string, itemJson: string, options: SessionAppendOptions): Promise<number> {
    if (this.appendMode === 'optimistic') {
      // Read, splice on this (horizontally scalable) client, compare-and-set: two round trips
      // and almost no Redis CPU. Only a call that loses a race pays for the server-side splice,
      // which cannot lose one.
      const before = await this.exec('session append', key, (c) => c.get(key));
      const { text, length } = appendToSessionText(
        before,
        itemJson,
        options.maxItems,
        key,
        options.count ?? 1,
      );
      const bytes = Buffer.byteLength(text);
      if (bytes > options.maxBytes) {
        throw new ValueTooLargeError(`session at ${key} after the append`, bytes, options.maxBytes);
      }
      if (await this.compareAndSet(key, before, text, options.ttlMs)) return length;
    }
    return this.appendOnServer(key, itemJson, options);
  }

  private async appendOnServer(
    key: string,
    itemJson: string,
    options: SessionAppendOptions,
  ): Promise<number> {
    const reply = await this.exec('session append', key, (c) =>
      APPEND.run(
        c,
        [key],
        [
          itemJson,
          Math.max(1, Math.round(options.ttlMs)),
          options.maxItems ?? 0,
          options.maxBytes,
          options.count ?? 1,
        ],
      ),
    );
    const [code, detail] = reply as [number, number];
    switch (code) {
      case 0:
        return detail;
      case 1:
        throw new SerializationError(`stored session at ${key} is not valid JSON`, {
          context: { key },
        });
      case 2:
        throw new SerializationError(`stored session at ${key} is not a JSON object`, {
          context: { key },
        });
      case 3:
        throw new SerializationError(
          `stored session at ${key} has a "messages" that is not an array`,
          { context: { key } },
        );
      case 4:
        throw new ValueTooLargeError(
          `session at ${key} after the append`,
          detail,
          options.maxBytes,
        );
      default:
        throw new SerializationError(
          `stored session at ${key} could not be appended to on the server (its "messages" key is spelled with escape sequences)`,
          { context: { key } },
        );
    }
  }

  async close(): Promise<void> {
    await this.connection.close();
  }

  /**
   * Holds the socket's writes until the end of the current tick, so the commands of concurrent
   * calls leave in one write instead of one syscall each (what node-redis does by default; with
   * 50 callers in flight it is worth more than a third of the throughput). Used only while other
   * commands are in flight, so a lone command is never held. Only on a standalone client we
   * created: a Cluster routes each command to its own node's socket, and a client passed in
   * keeps its owner's behaviour.
   */
  private cork(c: RedisClient): void {
    const stream = (c as Redis).stream as Socket | undefined;
    if (stream === undefined || typeof stream.cork !== 'function' || stream.destroyed) return;
    stream.cork();
    this.corked = true;
    process.nextTick(() => {
      this.corked = false;
      stream.uncork();
    });
  }

  /**
   * `connection.get()`, but failing at the first refused connection attempt instead of after
   * the whole `connectTimeout`: a server that answers "connection refused" is down now, and the
   * caller should hear so at once (the client keeps reconnecting in the background).
   */
  private async waitReady(): Promise<RedisClient> {
    const conn = this.connection;
    const ready = conn.get();
    let timer: NodeJS.Timeout | undefined;
    let client: RedisClient | undefined;
    let onError: ((e: Error) => void) | undefined;
    const refused = new Promise<never>((_, reject) => {
      onError = (e: Error) => {
        const code = (e as { code?: unknown }).code;
        if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH') {
          reject(conn.unavailable('is not reachable', e));
        }
      };
      // The client is created asynchronously (ioredis is imported lazily) by get() above.
      const attach = () => {
        client = conn.client;
        if (client) client.on('error', onError as (e: Error) => void);
        else timer = setTimeout(attach, 5);
      };
      attach();
    });
    try {
      const c = await Promise.race([ready, refused]);
      if (this.watched !== c) this.watch(c);
      return c;
    } catch (e) {
      if (client !== undefined && this.watched !== client) this.watch(client);
      if (client !== undefined && e instanceof Error && isRedisConnectionError(e.cause)) {
        this.down = e.cause as Error;
      }
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      if (client && onError) client.off('error', onError);
    }
  }

  /** Tracks whether `c` is known to be down: failed since it was last ready. */
  private watch(c: RedisClient): void {
    this.watched = c;
    this.down = undefined;
    c.on('error', (e: Error) => {
      if (c === this.watched && isRedisConnectionError(e)) this.down = e;
    });
    c.on('ready', () => {
      if (c === this.watched) this.down = undefined;
    });
  }

  /**
   * Runs `fn` with the ready client; connection failures become BackendUnavailableError. The
   * ready client is taken synchronously when there is one: each saved await is a microtask on
   * every session call.
   */
  private async exec<R>(
    operation: string,
    key: string,
    fn: (c: RedisClient) => Promise<R>,
  ): Promise<R> {
    try {
      const c = this.connection.client;
      if (c !== undefined && c.status === 'ready') {
        if (this.watched !== c) this.watch(c);
        if (!this.batchWrites) return await fn(c);
        // Batch only when other commands are in flight: a lone command goes out at once.
        if (this.inflight > 0 && !this.corked) this.cork(c);
        this.inflight++;
        try {
          return await fn(c);
        } finally {
          this.inflight--;
        }
      }
      if (c !== undefined && this.down !== undefined) {
        // Its last connection attempt failed and it has not been ready since: known down. (The
        // status alone does not say so: between a failed attempt and the next it may still
        // read "connecting".)
        throw this.connection.unavailable('is not reachable', this.down);
      }
      // Callers that arrive while the client is not ready share one wait: each wait adds
      // listeners to the client, and fifty of them would trip Node's MaxListeners warning.
      this.pending ??= this.waitReady().finally(() => {
        this.pending = undefined;
      });
      return await fn(await this.pending);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith('WRONGTYPE')) {
        // Someone stored a hash or a list under the session's key.
        throw new SerializationError(`stored value at ${key} is not a string (${operation})`, {
          cause: e,
          context: { key, operation },
        });
      }
      throw this.connection.mapError(e, operation);
    }
  }
}
