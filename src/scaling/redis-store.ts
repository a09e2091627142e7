import {
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisInput,
  resolveRedis,
} from '../core/connection.js';
import { ValidationError } from '../core/errors.js';
import { hashTag } from '../core/keys.js';
import type { SpendStore } from './spend-store.js';

/** Options of {@link RedisSpendStore}. */
export interface RedisSpendStoreOptions {
  /** Key prefix. @default 'azscale:cost:' */
  prefix?: string;
  /** Budget name: optimizers with the same prefix and name share one total. @default 'default' */
  name?: string;
  /** Connection defaults (timeouts in seconds). */
  connection?: RedisConnectionOptions;
}

/**
 * Spend in Redis, shared by every process that uses the same prefix and name. One key per hour,
 * `<prefix>{<name>:<hour>}`, grown with INCRBYFLOAT and given an expiry; categories live in a
 * hash next to it. Both keys carry the same hash tag, so the MULTI that updates them is legal on
 * a Redis Cluster.
 */
export class RedisSpendStore implements SpendStore {
  private readonly conn: RedisConnection;
  private readonly prefix: string;
  private readonly name: string;

  constructor(redis: RedisInput, options: RedisSpendStoreOptions = {}) {
    const conn = resolveRedis(redis, options.connection);
    if (!conn) {
      throw new ValidationError(
        'redis must be a Redis URL, client or { nodes }, received nothing',
        {
          option: 'redis',
        },
      );
    }
    this.conn = conn;
    this.prefix = options.prefix ?? 'azscale:cost:';
    this.name = options.name ?? 'default';
  }

  /** The key of the hour's total (hour = whole hours since the epoch, UTC). */
  keyFor(hour: number): string {
    return `${this.prefix}${hashTag(`${this.name}:${hourLabel(hour)}`)}`;
  }

  async add(
    hour: number,
    amount: number,
    category: string | undefined,
    ttlSeconds: number,
  ): Promise<number> {
    const key = this.keyFor(hour);
    const ttl = Math.max(1, Math.ceil(ttlSeconds));
    return this.conn.run('cost.recordSpend', async (c) => {
      // MULTI keeps the increment and its expiry together: a crash between them cannot leave a
      // bucket that never expires.
      const m = c.multi().incrbyfloat(key, String(amount)).expire(key, ttl);
      if (category !== undefined) {
        m.hincrbyfloat(`${key}:categories`, category, String(amount)).expire(
          `${key}:categories`,
          ttl,
        );
      }
      const res = await m.exec();
      if (!res) throw new Error('cost.recordSpend: transaction aborted');
      const [err, total] = res[0] as [Error | null, unknown];
      if (err) throw err;
      for (const [e] of res) if (e) throw e;
      return Number(total);
    });
  }

  async total(hour: number): Promise<number> {
    const v = await this.conn.run('cost.currentSpend', (c) => c.get(this.keyFor(hour)));
    return v === null ? 0 : Number(v);
  }

  async categories(hour: number): Promise<Record<string, number>> {
    const h = await this.conn.run('cost.spendByCategory', (c) =>
      c.hgetall(`${this.keyFor(hour)}:categories`),
    );
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(h)) out[k] = Number(v);
    return out;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/** `2026-11-28T15` for hour index 491... (UTC): readable in `redis-cli --scan`. */
function hourLabel(hour: number): string {
  return new Date(hour * 3_600_000).toISOString().slice(0, 13);
}
