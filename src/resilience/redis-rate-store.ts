import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../core/connection.js';
import { hashTag } from '../core/keys.js';
import { LuaScript } from '../core/lua-script.js';
import { type RedisStoreOptions, exec, storeOptions } from './redis-common.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { WINDOW_SLOTS } from './rate-math.js';
import type {
  RateAdjustment,
  RateCost,
  RatePeekResult,
  RateStore,
  RateTakeResult,
} from './store.js';
// ---------------------------------------------------------------------------------------------
// Rate: one hash per key with fields req and tok (theoretical arrival times, microseconds, kept
// as integers printed with %.0f: Lua's default number format would round them to 14 digits) and
// pause (microseconds). Every write leaves the hash with an expiry, whatever the input: a pause
// is capped at MAX_PAUSE_US here too, so PEXPIRE always gets a valid time.

/** The longest pause (ms) a script records, whatever it is given: 10 years. */
const MAX_PAUSE_MS = MAX_DURATION_SECONDS * 1000;

/**
 * How long (ms) a script remembers an operation id, so that a command ioredis resends after a
 * lost reply is recognised and not applied twice. ioredis resends within one reconnect (the
 * connection fails commands after `maxRetriesPerRequest` reconnects), far below this.
 */
export const OP_ID_TTL_MS = 600_000;

const RATE_CLOCK = `
local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000000 + tonumber(__t[2])
local maxPause = ${MAX_PAUSE_MS} * 1000
`;

// KEYS[1] the budget hash, KEYS[2] this call's operation id (same hash tag).
// ARGV: request interval us, token interval us, tokens, period us, op id ttl ms
const RATE_TAKE = new LuaScript(`${RATE_CLOCK}
local seen = redis.call('GET', KEYS[2])
if seen then return {1, 0, seen} end
local reqI = tonumber(ARGV[1])
local tokI = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'req', 'tok', 'pause')
local pause = math.min(tonumber(s[3] or '0'), now + maxPause)
if pause > now then
  -- A key written before pauses were capped may lack an expiry: give it one.
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], math.ceil((pause - now) / 1000) + 61000)
  end
  return {0, math.ceil((pause - now) / 1000)}
end
local retry = 0
local newReq = nil
local newTok = nil
if reqI > 0 then
  newReq = math.max(tonumber(s[1] or '0'), now) + reqI
  if newReq - now > period then retry = math.max(retry, newReq - period - now) end
end
if tokI > 0 and tokens > 0 then
  newTok = math.max(tonumber(s[2] or '0'), now) + tokens * tokI
  if newTok - now > period then retry = math.max(retry, newTok - period - now) end
end
if retry > 0 then return {0, math.ceil(math.min(retry, maxPause) / 1000)} end
if newReq then redis.call('HSET', KEYS[1], 'req', string.format('%.0f', newReq)) end
if newTok then redis.call('HSET', KEYS[1], 'tok', string.format('%.0f', newTok)) end
local ttl = math.ceil(period / 1000) + 1000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local at = string.format('%.3f', now / 1000)
redis.call('SET', KEYS[2], at, 'PX', ARGV[5])
return {1, 0, at}`);

// Sliding window: KEYS[3] a hash of slots, fields r<slot> (requests) and t<slot> (tokens). A
// slot is ${WINDOW_SLOTS}th of the window; it counts until all of it has left the window, so
// the counted calls include every call of the last period (see WINDOW_SLOTS in memory-store.ts,
// whose windowWait this mirrors).
const RATE_WINDOW = `
local function slotsOf(all, kind, lo, drop)
  local list, used = {}, 0
  for i = 1, #all, 2 do
    local f = all[i]
    local b = tonumber(string.sub(f, 2))
    if b < lo then
      drop[f] = true
    elseif string.sub(f, 1, 1) == kind then
      local v = tonumber(all[i + 1])
      used = used + v
      list[#list + 1] = {b, v}
    end
  end
  return list, used
end
local function waitFor(list, used, cost, limit, g, period, now)
  if used + cost <= limit + 1e-9 then return 0 end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  local freed = 0
  for _, e in ipairs(list) do
    freed = freed + e[2]
    if used - freed + cost <= limit + 1e-9 then
      return math.max(1000, (e[1] + 1) * g + period - now)
    end
  end
  return period
end
local function slotName(kind, b) return kind .. string.format('%.0f', b) end
local function keepWindow(period)
  local ttl = math.ceil(period / 1000) * 2 + 1000
  if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
end
`;

// KEYS[1] the budget hash (pause), KEYS[2] this call's operation id, KEYS[3] the slots.
// ARGV: request limit, token limit, tokens, period us, op id ttl ms
const RATE_WINDOW_TAKE = new LuaScript(`${RATE_CLOCK}${RATE_WINDOW}
local seen = redis.call('GET', KEYS[2])
if seen then return {1, 0, seen} end
local reqL = tonumber(ARGV[1])
local tokL = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local period = tonumber(ARGV[4])
local pause = math.min(tonumber(redis.call('HGET', KEYS[1], 'pause') or '0'), now + maxPause)
if pause > now then
  if redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], math.ceil((pause - now) / 1000) + 61000)
  end
  return {0, math.ceil((pause - now) / 1000), ''}
end
local g = period / ${WINDOW_SLOTS}
local lo = math.floor((now - period) / g)
local cur = math.floor(now / g)
local all = redis.call('HGETALL', KEYS[3])
local drop = {}
local rList, rUsed = slotsOf(all, 'r', lo, drop)
local tList, tUsed = slotsOf(all, 't', lo, drop)
for f in pairs(drop) do redis.call('HDEL', KEYS[3], f) end
local retry = 0
if reqL > 0 then retry = math.max(retry, waitFor(rList, rUsed, 1, reqL, g, period, now)) end
if tokL > 0 and tokens > 0 then
  retry = math.max(retry, waitFor(tList, tUsed, tokens, tokL, g, period, now))
end
if retry > 0 then return {0, math.ceil(math.min(retry, maxPause) / 1000), ''} end
if reqL > 0 then redis.call('HINCRBYFLOAT', KEYS[3], slotName('r', cur), 1) end
if tokL > 0 and tokens > 0 then
  redis.call('HINCRBYFLOAT', KEYS[3], slotName('t', cur), tokens)
end
keepWindow(period)
-- The grant time in ms with the microseconds, as a string (a reply number would be truncated).
local at = string.format('%.3f', now / 1000)
redis.call('SET', KEYS[2], at, 'PX', ARGV[5])
return {1, 0, at}`);

// KEYS[1] the budget hash, KEYS[2] the adjustment's id, KEYS[3] the slots.
// ARGV: mode ('w' window, 'g' gcra), tokens (signed), token interval us, token limit, period us,
// grant time ms ('' = now), id ttl ms
const RATE_ADJUST = new LuaScript(`${RATE_CLOCK}${RATE_WINDOW}
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local tokens = tonumber(ARGV[2])
local period = tonumber(ARGV[5])
if not tokens or tokens ~= tokens or tokens == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[7])
if ARGV[1] == 'w' then
  if tonumber(ARGV[4]) <= 0 then return 1 end
  local g = period / ${WINDOW_SLOTS}
  if tokens > 0 then
    redis.call('HINCRBYFLOAT', KEYS[3], slotName('t', math.floor(now / g)), tokens)
    keepWindow(period)
    return 1
  end
  -- A refund goes back to the slot the call was counted in, while that slot still counts.
  local at = now
  if ARGV[6] ~= '' then at = math.floor(tonumber(ARGV[6]) * 1000 + 0.5) end
  local b = math.floor(at / g)
  if b < math.floor((now - period) / g) then return 1 end
  local f = slotName('t', b)
  local v = redis.call('HGET', KEYS[3], f)
  if v then
    redis.call('HSET', KEYS[3], f, string.format('%.17g', math.max(0, tonumber(v) + tokens)))
  end
  return 1
end
local tokI = tonumber(ARGV[3])
if tokI <= 0 then return 1 end
local tat = tonumber(redis.call('HGET', KEYS[1], 'tok') or '0')
if tokens > 0 then tat = math.max(tat, now) + tokens * tokI
else tat = math.max(tat + tokens * tokI, now) end
redis.call('HSET', KEYS[1], 'tok', string.format('%.0f', tat))
local ttl = math.ceil((tat - now) / 1000) + math.ceil(period / 1000) + 1000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`);

// ARGV: pause in microseconds
const RATE_PAUSE = new LuaScript(`${RATE_CLOCK}
local us = tonumber(ARGV[1])
if not us or us ~= us or us < 0 then us = 0 end
local untilUs = now + math.min(us, maxPause)
local cur = math.min(tonumber(redis.call('HGET', KEYS[1], 'pause') or '0'), now + maxPause)
if untilUs > cur then
  redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', untilUs))
  cur = untilUs
end
if cur > now then
  local ttl = math.ceil((cur - now) / 1000) + 61000
  if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return 1`);

// Read-only: how far each arrival time and the pause are ahead of now, in microseconds.
const RATE_PEEK = new LuaScript(`${RATE_CLOCK}
local s = redis.call('HMGET', KEYS[1], 'req', 'tok', 'pause')
local function ahead(v) return string.format('%.0f', math.max(0, math.min(tonumber(v or '0') - now, maxPause))) end
return { ahead(s[1]), ahead(s[2]), ahead(s[3]) }`);

/** Rate budgets (GCRA or sliding window) in Redis (standalone or Cluster). */
export class RedisRateStore implements RateStore {
  private readonly prefix: string;
  private readonly ownsConnection: boolean;

  /**
   * @param conn The connection (see `resolveRedis`); closed by {@link close} unless
   *   `ownsConnection: false`.
   * @param options `{ prefix }` (default `azs:rate:`), or the prefix itself (0.1.0 shape).
   * @param ownsConnection 0.1.0 shape of `options.ownsConnection`.
   */
  constructor(
    private readonly conn: RedisConnection,
    options: RedisStoreOptions | string = {},
    ownsConnection?: boolean,
  ) {
    const o = storeOptions(options, ownsConnection, 'azs:rate:');
    this.prefix = o.prefix;
    this.ownsConnection = o.ownsConnection;
  }

  private key(key: string): string {
    return `${this.prefix}${hashTag(key)}`;
  }

  async take(key: string, cost: RateCost): Promise<RateTakeResult> {
    const k = this.key(key);
    if (cost.mode === 'sliding-window') {
      const raw = (await exec(
        this.conn,
        'rate take',
        RATE_WINDOW_TAKE,
        [k, `${k}:op:${randomUUID()}`, `${k}:win`],
        [
          cost.requestLimit ?? 0,
          cost.tokenLimit ?? 0,
          cost.tokens,
          Math.round(cost.periodMs * 1000),
          OP_ID_TTL_MS,
        ],
      )) as unknown[];
      const allowed = Number(raw[0]) === 1;
      return allowed
        ? { allowed, retryAfterMs: 0, at: Number(raw[2]) }
        : { allowed, retryAfterMs: Number(raw[1]) };
    }
    // Microseconds keep sub-millisecond token costs exact (1M tokens/min = 0.06 ms per token).
    // The operation id makes a resent take (its reply was lost) return "allowed" without
    // spending the budget a second time.
    const raw = (await exec(
      this.conn,
      'rate take',
      RATE_TAKE,
      [k, `${k}:op:${randomUUID()}`],
      [
        Math.round(cost.requestIntervalMs * 1000),
        cost.tokenIntervalMs * 1000,
        cost.tokens,
        Math.round(cost.periodMs * 1000),
        OP_ID_TTL_MS,
      ],
    )) as unknown[];
    const allowed = Number(raw[0]) === 1;
    // A grant stored by a version without grant times has none ('1').
    const at = Number(raw[2]);
    return allowed
      ? { allowed, retryAfterMs: 0, ...(at > 1 ? { at } : {}) }
      : { allowed, retryAfterMs: Number(raw[1]) };
  }

  async adjust(key: string, cost: RateCost, adjustment: RateAdjustment): Promise<void> {
    const k = this.key(key);
    await exec(
      this.conn,
      'rate adjust',
      RATE_ADJUST,
      [k, `${k}:adj:${adjustment.id}`, `${k}:win`],
      [
        cost.mode === 'sliding-window' ? 'w' : 'g',
        adjustment.tokens,
        cost.tokenIntervalMs * 1000,
        cost.tokenLimit ?? 0,
        Math.round(cost.periodMs * 1000),
        adjustment.at === undefined ? '' : adjustment.at.toFixed(3),
        OP_ID_TTL_MS,
      ],
    );
  }

  async pause(key: string, ms: number): Promise<void> {
    const us = Math.ceil(Math.min(Math.max(0, ms), MAX_PAUSE_MS) * 1000);
    await exec(this.conn, 'rate pause', RATE_PAUSE, [this.key(key)], [us]);
  }

  async peek(key: string): Promise<RatePeekResult> {
    const raw = (await exec(this.conn, 'rate peek', RATE_PEEK, [this.key(key)], [])) as unknown[];
    const ms = (i: number) => Math.max(0, Number(raw[i]) / 1000 || 0);
    return { requestAheadMs: ms(0), tokenAheadMs: ms(1), pausedForMs: ms(2) };
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.conn.close();
  }
}
