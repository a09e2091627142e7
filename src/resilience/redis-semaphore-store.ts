import type { RedisConnection } from '../core/connection.js';
import { hashTag } from '../core/keys.js';
import { LuaScript } from '../core/lua-script.js';
import { NOW_MS, type RedisStoreOptions, exec, storeOptions } from './redis-common.js';
import type { SemaphoreAcquireResult, SemaphoreStore, SemaphoreWaiter } from './store.js';
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
  private readonly prefix: string;
  private readonly ownsConnection: boolean;

  /**
   * @param conn The connection (see `resolveRedis`); closed by {@link close} unless
   *   `ownsConnection: false`.
   * @param options `{ prefix }` (default `azs:limit:`), or the prefix itself (0.1.0 shape).
   * @param ownsConnection 0.1.0 shape of `options.ownsConnection`.
   */
  constructor(
    private readonly conn: RedisConnection,
    options: RedisStoreOptions | string = {},
    ownsConnection?: boolean,
  ) {
    const o = storeOptions(options, ownsConnection, 'azs:limit:');
    this.prefix = o.prefix;
    this.ownsConnection = o.ownsConnection;
  }

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
