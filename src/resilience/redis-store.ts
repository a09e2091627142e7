import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../core/connection.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { LuaScript } from '../core/lua-script.js';
import { hashTag } from '../core/keys.js';
import { WINDOW_SLOTS } from './memory-store.js';
import type {
  BreakerStateStore,
  RateAdjustment,
  RateCost,
  RatePeekResult,
  RateStore,
  RateTakeResult,
  SemaphoreAcquireResult,
  SemaphoreStore,
  SemaphoreWaiter,
  SharedBreakerView,
  TrialResult,
} from './store.js';

/**
 * Redis implementations of the resilience contracts. Every operation is one Lua script over keys
 * that share a hash tag, so each runs atomically on one Cluster slot. Scripts read the clock with
 * `TIME` (allowed since Redis 5 with effect replication), so the fleet agrees on one clock: the
 * server's.
 */

const NOW_MS = `
local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
`;

async function exec(
  conn: RedisConnection,
  op: string,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  return conn.run(op, (c) => script.run(c, keys, args));
}

// ---------------------------------------------------------------------------------------------
// Breaker: one hash per breaker, fields state ('open' | 'half'), until, owner, tuntil, gen. The
// key is absent when the breaker is closed; gen lives in its own key so it survives closing.

const BREAKER_VIEW = `
local function view(now)
  local s = redis.call('HMGET', KEYS[1], 'state', 'until')
  local gen = tonumber(redis.call('GET', KEYS[2]) or '0')
  if not s[1] then return {'closed', 0, gen} end
  local rem = 0
  if s[1] == 'open' then rem = math.max(0, tonumber(s[2]) - now) end
  return {s[1], rem, gen}
end
local function keep(ms)
  redis.call('PEXPIRE', KEYS[1], ms)
  redis.call('PEXPIRE', KEYS[2], ms + 86400000)
end
-- The next generation: above the last one and at least the server clock in ms, so it keeps
-- growing even after the gen key expired (a reader that saw generation g before a long quiet
-- spell must not take a new open for an old reply).
local function nextGen(now)
  local g = math.max(tonumber(redis.call('GET', KEYS[2]) or '0') + 1, now)
  redis.call('SET', KEYS[2], string.format('%.0f', g))
  return g
end
`;

const BREAKER_READ = new LuaScript(`${NOW_MS}${BREAKER_VIEW}
return view(now)`);

// ARGV: openMs
const BREAKER_OPEN = new LuaScript(`${NOW_MS}${BREAKER_VIEW}
if redis.call('EXISTS', KEYS[1]) == 0 then
  local openMs = tonumber(ARGV[1])
  local gen = nextGen(now)
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', string.format('%.0f', now + openMs), 'gen', string.format('%.0f', gen))
  keep(openMs + 600000)
end
return view(now)`);

// ARGV: owner, trialTtlMs
const BREAKER_TRIAL = new LuaScript(`${NOW_MS}${BREAKER_VIEW}
local s = redis.call('HMGET', KEYS[1], 'state', 'until', 'tuntil', 'owner')
-- The owner's own trial, resent after a lost reply: still granted (one trial per owner).
if s[1] == 'half' and s[4] == ARGV[1] and now < tonumber(s[3]) then
  local v = view(now)
  return {1, v[1], v[2], v[3]}
end
local ok = false
if s[1] == 'open' and now >= tonumber(s[2]) then ok = true end
if s[1] == 'half' and now >= tonumber(s[3]) then ok = true end
if ok then
  local ttl = tonumber(ARGV[2])
  local gen = nextGen(now)
  redis.call('HSET', KEYS[1], 'state', 'half', 'owner', ARGV[1], 'tuntil', string.format('%.0f', now + ttl), 'gen', string.format('%.0f', gen))
  keep(ttl + 600000)
  local v = view(now)
  return {1, v[1], v[2], v[3]}
end
local v = view(now)
return {0, v[1], v[2], v[3]}`);

// ARGV: owner, success (1/0), openMs
const BREAKER_SETTLE = new LuaScript(`${NOW_MS}${BREAKER_VIEW}
local s = redis.call('HMGET', KEYS[1], 'state', 'owner')
if s[1] == 'half' and s[2] == ARGV[1] then
  local gen = nextGen(now)
  if ARGV[2] == '1' then
    redis.call('DEL', KEYS[1])
    redis.call('PEXPIRE', KEYS[2], 86400000)
  else
    local openMs = tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], 'state', 'open', 'until', string.format('%.0f', now + openMs), 'gen', string.format('%.0f', gen))
    redis.call('HDEL', KEYS[1], 'owner', 'tuntil')
    keep(openMs + 600000)
  end
end
return view(now)`);

const BREAKER_RESET = new LuaScript(`${NOW_MS}${BREAKER_VIEW}
if redis.call('DEL', KEYS[1]) == 1 then
  nextGen(now)
  redis.call('PEXPIRE', KEYS[2], 86400000)
end
return 1`);

function toView(raw: unknown[], offset = 0): SharedBreakerView {
  const s = String(raw[offset]);
  return {
    state: s === 'open' ? 'open' : s === 'half' ? 'half-open' : 'closed',
    remainingMs: Number(raw[offset + 1]),
    generation: Number(raw[offset + 2]),
  };
}

/** Shared breaker state in Redis (standalone or Cluster). */
export class RedisBreakerStore implements BreakerStateStore {
  constructor(
    private readonly conn: RedisConnection,
    private readonly prefix = 'azs:breaker:',
    private readonly ownsConnection = true,
  ) {}

  private keys(name: string): string[] {
    const tag = hashTag(name);
    return [`${this.prefix}${tag}`, `${this.prefix}${tag}:gen`];
  }

  async read(name: string): Promise<SharedBreakerView> {
    return toView(
      (await exec(this.conn, 'breaker read', BREAKER_READ, this.keys(name), [])) as unknown[],
    );
  }

  async open(name: string, openMs: number): Promise<SharedBreakerView> {
    const raw = await exec(this.conn, 'breaker open', BREAKER_OPEN, this.keys(name), [
      Math.ceil(openMs),
    ]);
    return toView(raw as unknown[]);
  }

  async tryTrial(name: string, owner: string, trialTtlMs: number): Promise<TrialResult> {
    const raw = (await exec(this.conn, 'breaker trial', BREAKER_TRIAL, this.keys(name), [
      owner,
      Math.ceil(trialTtlMs),
    ])) as unknown[];
    return { granted: Number(raw[0]) === 1, view: toView(raw, 1) };
  }

  async settleTrial(
    name: string,
    owner: string,
    success: boolean,
    openMs: number,
  ): Promise<SharedBreakerView> {
    const raw = await exec(this.conn, 'breaker settle', BREAKER_SETTLE, this.keys(name), [
      owner,
      success ? '1' : '0',
      Math.ceil(openMs),
    ]);
    return toView(raw as unknown[]);
  }

  async reset(name: string): Promise<void> {
    await exec(this.conn, 'breaker reset', BREAKER_RESET, this.keys(name), []);
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Semaphore: KEYS[1] a sorted set lease id -> expiry (ms, server clock), KEYS[2] a hash lease id
// -> weight. Expired leases are reclaimed inside every acquire, so a holder killed with SIGKILL
// frees its weight at the first acquire after its lease ran out.

const SEM_RECLAIM = `${NOW_MS}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local used = 0
for _, w in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(w) end
local function keep(ttl)
  for _, k in ipairs(KEYS) do
    if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
  end
end
`;

// KEYS[3] the line of waiting processes (id -> arrival number from the KEYS[5] counter, so ties
// cannot happen), KEYS[4] id -> when last heard from.
// ARGV: leaseId, weight, limit, ttlMs, waiterId ('' = none), more (1/0), staleMs
const SEM_ACQUIRE = new LuaScript(`${SEM_RECLAIM}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return {1, used, 0} end
local waiter = ARGV[5]
if waiter ~= '' then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))
  for _, id in ipairs(gone) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
  end
end
local weight = tonumber(ARGV[2])
local ttl = tonumber(ARGV[4])
local free = tonumber(ARGV[3]) - used
local ahead = nil
if waiter ~= '' then ahead = redis.call('ZRANK', KEYS[3], waiter) end
if not ahead then ahead = redis.call('ZCARD', KEYS[3]) end
if weight <= free and ahead + weight <= free then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], weight)
  if waiter ~= '' then
    if ARGV[6] == '1' then
      redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), waiter)
      redis.call('ZADD', KEYS[4], now, waiter)
    else
      redis.call('ZREM', KEYS[3], waiter)
      redis.call('ZREM', KEYS[4], waiter)
    end
  end
  keep(ttl + 1000)
  return {1, used + weight, 0}
end
if waiter ~= '' then
  if not redis.call('ZSCORE', KEYS[3], waiter) then
    redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[5]), waiter)
  end
  redis.call('ZADD', KEYS[4], now, waiter)
  keep(ttl + 1000)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local hint = 1
if first[2] then hint = math.max(1, tonumber(first[2]) - now) end
return {0, used, hint}`);

// ARGV: leaseId, ttlMs
const SEM_RENEW = new LuaScript(`${SEM_RECLAIM}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local ttl = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
  keep(ttl + 1000)
  return 1
end
return 0`);

// ARGV: leaseId
const SEM_RELEASE = new LuaScript(`
local n = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n`);

const SEM_USED = new LuaScript(`${SEM_RECLAIM}
return used`);

// ARGV: waiterId
const SEM_LEAVE = new LuaScript(`
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1`);

/** The lease semaphore in Redis (standalone or Cluster). */
export class RedisSemaphoreStore implements SemaphoreStore {
  constructor(
    private readonly conn: RedisConnection,
    private readonly prefix = 'azs:limit:',
    private readonly ownsConnection = true,
  ) {}

  private keys(key: string): string[] {
    const tag = hashTag(key);
    return [
      `${this.prefix}${tag}:leases`,
      `${this.prefix}${tag}:weights`,
      `${this.prefix}${tag}:line`,
      `${this.prefix}${tag}:seen`,
      `${this.prefix}${tag}:seq`,
    ];
  }

  async acquire(
    key: string,
    leaseId: string,
    weight: number,
    limit: number,
    ttlMs: number,
    waiter?: SemaphoreWaiter,
  ): Promise<SemaphoreAcquireResult> {
    const raw = (await exec(this.conn, 'semaphore acquire', SEM_ACQUIRE, this.keys(key), [
      leaseId,
      weight,
      limit,
      Math.ceil(ttlMs),
      waiter?.id ?? '',
      waiter?.more ? '1' : '0',
      Math.ceil(waiter?.staleMs ?? 0),
    ])) as unknown[];
    return { acquired: Number(raw[0]) === 1, used: Number(raw[1]), retryHintMs: Number(raw[2]) };
  }

  async renew(key: string, leaseId: string, ttlMs: number): Promise<boolean> {
    const raw = await exec(this.conn, 'semaphore renew', SEM_RENEW, this.keys(key), [
      leaseId,
      Math.ceil(ttlMs),
    ]);
    return Number(raw) === 1;
  }

  async release(key: string, leaseId: string): Promise<boolean> {
    return (
      Number(await exec(this.conn, 'semaphore release', SEM_RELEASE, this.keys(key), [leaseId])) ===
      1
    );
  }

  async leave(key: string, waiterId: string): Promise<void> {
    await exec(this.conn, 'semaphore leave', SEM_LEAVE, this.keys(key), [waiterId]);
  }

  async used(key: string): Promise<number> {
    return Number(await exec(this.conn, 'semaphore used', SEM_USED, this.keys(key), []));
  }

  async close(): Promise<void> {
    if (this.ownsConnection) await this.conn.close();
  }
}

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
  constructor(
    private readonly conn: RedisConnection,
    private readonly prefix = 'azs:rate:',
    private readonly ownsConnection = true,
  ) {}

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
