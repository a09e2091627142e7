import { randomUUID } from 'node:crypto';
import {
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisInput,
  isRedisConnection,
  resolveRedis,
} from '../core/connection.js';
import { ValidationError } from '../core/errors.js';
import { hashTag, validateId, validatePrefix } from '../core/keys.js';
import { MAX_CATEGORIES, OP_ID_TTL_MS, OTHER_CATEGORY, type SpendStore } from './spend-store.js';
import { LuaScript } from '../core/lua-script.js';
import {
  type DurabilityOptions,
  type DurabilityPolicy,
  durableWrite,
  resolveDurability,
} from '../core/durability.js';

/** Options of {@link RedisSpendStore}. */
export interface RedisSpendStoreOptions {
  /** Key prefix. @default 'azscale:cost:' */
  prefix?: string;
  /** Budget name: optimizers with the same prefix and name share one total. @default 'default' */
  name?: string;
  /** Connection defaults (timeouts in seconds). */
  connection?: RedisConnectionOptions;
  /**
   * Acknowledge an increment only once `replicas` replicas have it (`WAIT`, `timeout` in
   * seconds); otherwise fail with `DurabilityError`. @default undefined (off)
   */
  durability?: DurabilityOptions;
}

/**
 * Spend in Redis, shared by every process that uses the same prefix and name. One key per hour,
 * `<prefix>{<name>:<hour>}`, grown with INCRBYFLOAT and given an expiry; categories live in a
 * hash next to it. One Lua script does both, so an increment can never lose its expiry; both keys
 * carry the same hash tag, so the script is legal on a Redis Cluster.
 */
export class RedisSpendStore implements SpendStore {
  private readonly conn: RedisConnection;
  private readonly prefix: string;
  private readonly name: string;
  private lastHour = Number.NaN;
  private lastKey = '';
  private readonly durability: DurabilityPolicy | undefined;

  /**
   * @param redis A connection (see `resolveRedis`; closed by {@link close}), or what a `redis`
   *   option accepts (URL, client, `{ nodes }`, `{ sentinels, name }`).
   */
  constructor(redis: RedisConnection | RedisInput, options: RedisSpendStoreOptions = {}) {
    this.prefix = validatePrefix(options.prefix ?? 'azscale:cost:', 'prefix');
    this.name = validateId(options.name ?? 'default', 'name', 128);
    const conn = isRedisConnection(redis) ? redis : resolveRedis(redis, options.connection);
    if (!conn) {
      throw new ValidationError(
        'redis must be a Redis URL, client or { nodes }, received nothing',
        {
          option: 'redis',
        },
      );
    }
    this.conn = conn;
    this.durability = resolveDurability(options.durability);
  }

  /** The key of the hour's total (hour = whole hours since the epoch, UTC). */
  keyFor(hour: number): string {
    // Every call in an hour uses the same key: build it once per hour, not per call.
    if (hour !== this.lastHour) {
      this.lastKey = `${this.prefix}${hashTag(`${this.name}:${hourLabel(hour)}`)}`;
      this.lastHour = hour;
    }
    return this.lastKey;
  }

  async add(
    hour: number,
    amount: number,
    category: string | undefined,
    ttlSeconds: number,
  ): Promise<number> {
    const key = this.keyFor(hour);
    const ttl = String(Math.max(1, Math.ceil(ttlSeconds)));
    // Every key the script may touch is declared (one hash tag, one Cluster slot); the operation
    // id lets a resent increment (its reply was lost, ioredis sent it again) count once.
    const keys = [key, `${key}:categories`, `${key}:op:${randomUUID()}`];
    const args = [
      String(amount),
      ttl,
      category ?? '',
      String(OP_ID_TTL_MS),
      String(MAX_CATEGORIES),
    ];
    const total = await this.conn.run('cost.recordSpend', (c) =>
      durableWrite(this.durability, c, key, 'cost.recordSpend', (w) => ADD.run(w, keys, args)),
    );
    return Number(total);
  }

  async total(hour: number): Promise<number> {
    const key = this.keyFor(hour);
    const c = this.conn.client;
    let v: string | null;
    // Hot path: one GET on the ready client, without the extra async hops of conn.run().
    if (c && c.status === 'ready' && !this.conn.isClosed) {
      try {
        v = await c.get(key);
      } catch (e) {
        throw this.conn.mapError(e, 'cost.currentSpend');
      }
    } else {
      v = await this.conn.run('cost.currentSpend', (cl) => cl.get(key));
    }
    return v === null ? 0 : Number(v);
  }

  async categories(hour: number): Promise<Record<string, number>> {
    const h = await this.conn.run('cost.spendByCategory', (c) =>
      c.hgetall(`${this.keyFor(hour)}:categories`),
    );
    // fromEntries defines own properties: a category named `__proto__` stays a category.
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/** `2026-11-28T15` for hour index 491... (UTC): readable in `redis-cli --scan`. */
function hourLabel(hour: number): string {
  // Cut after the hour, not at a fixed offset: past year 9999 the ISO year has six digits and
  // a sign, and a fixed cut would file every hour of a day under one key.
  const iso = new Date(hour * 3_600_000).toISOString();
  return iso.slice(0, iso.indexOf('T') + 3);
}

// INCRBYFLOAT and EXPIRE (and the category's HINCRBYFLOAT and EXPIRE) as one atomic step, once
// per operation id: a resend of an applied increment returns the total it produced.
// KEYS: total, categories, op id. ARGV: amount, ttl seconds, category ('' = none), op ttl ms,
// most categories per hour.
const ADD_SCRIPT = `
local done = redis.call('GET', KEYS[3])
if done then return done end
local t = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local cat = ARGV[3]
if cat ~= '' then
  if redis.call('HEXISTS', KEYS[2], cat) == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then
    cat = '${OTHER_CATEGORY}'
  end
  redis.call('HINCRBYFLOAT', KEYS[2], cat, ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
redis.call('SET', KEYS[3], t, 'PX', ARGV[4])
return t`;
const ADD = new LuaScript(ADD_SCRIPT);
