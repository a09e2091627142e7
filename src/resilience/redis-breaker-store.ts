import type { RedisConnection } from '../core/connection.js';
import { hashTag } from '../core/keys.js';
import { LuaScript } from '../core/lua-script.js';
import { NOW_MS, type RedisStoreOptions, exec, storeOptions } from './redis-common.js';
import type { BreakerStateStore, SharedBreakerView, TrialResult } from './store.js';
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
  private readonly prefix: string;
  private readonly ownsConnection: boolean;

  /**
   * @param conn The connection (see `resolveRedis`); closed by {@link close} unless
   *   `ownsConnection: false`.
   * @param options `{ prefix }` (default `azs:breaker:`), or the prefix itself (0.1.0 shape).
   * @param ownsConnection 0.1.0 shape of `options.ownsConnection`.
   */
  constructor(
    private readonly conn: RedisConnection,
    options: RedisStoreOptions | string = {},
    ownsConnection?: boolean,
  ) {
    const o = storeOptions(options, ownsConnection, 'azs:breaker:');
    this.prefix = o.prefix;
    this.ownsConnection = o.ownsConnection;
  }

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
