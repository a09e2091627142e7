/**
 * Per-client request budgets: one `RateLimiter` per (route, client address), all sharing one
 * rate store, so with Redis a client gets the same budget whichever instance it reaches.
 * The limiters themselves are a small LRU: an address not seen for a while is forgotten here
 * (its budget lives on in the store until it refills), so a flood of distinct addresses costs
 * bounded memory.
 */
import type { RedisConnection } from '../../src/core/index.js';
import {
  MemoryRateStore,
  RateLimiter,
  type RateStore,
  RedisRateStore,
} from '../../src/resilience/index.js';

/** Limiter objects kept in this process (each is a few hundred bytes). */
const MAX_CLIENTS = 10_000;

/** Outcome of {@link ClientLimits.take}. */
export interface ClientVerdict {
  /** True when the request may go on. */
  allowed: boolean;
  /** When refused: seconds until the client's budget has room again. */
  retryAfter: number;
}

/** Requests per minute per client, per route. */
export class ClientLimits {
  private readonly store: RateStore;
  private readonly limiters = new Map<string, RateLimiter>();

  /**
   * @param perMinute requests per minute for each route name; 0 (or absent) turns a route's
   *   limit off.
   * @param connection the shared Redis (fleet-wide budgets), or undefined for this process only.
   */
  constructor(
    private readonly perMinute: Readonly<Record<string, number>>,
    connection: RedisConnection | undefined,
  ) {
    this.store = connection
      ? new RedisRateStore(connection, 'agent:ratelimit:', false)
      : new MemoryRateStore();
  }

  /** Spends one request of `client`'s budget on `route`; never waits. */
  async take(route: string, client: string): Promise<ClientVerdict> {
    const rpm = this.perMinute[route];
    if (!rpm) return { allowed: true, retryAfter: 0 };
    // Addresses are short, but the key is built from client input (X-Forwarded-For behind a
    // trusted proxy): keep it to the characters an address uses.
    const key = `${route}:${client.replace(/[^A-Za-z0-9.:_-]/g, '_').slice(0, 64)}`;
    let limiter = this.limiters.get(key);
    if (limiter) {
      // Most recently used last: the Map's insertion order is the LRU order.
      this.limiters.delete(key);
    } else {
      limiter = new RateLimiter({ key, requestsPerMinute: rpm, store: this.store, maxWait: 0 });
      if (this.limiters.size >= MAX_CLIENTS) {
        const oldest = this.limiters.keys().next().value as string;
        this.limiters.delete(oldest);
      }
    }
    this.limiters.set(key, limiter);
    return limiter.tryAcquire();
  }

  /** Releases the store (a Redis connection passed in stays open: the caller owns it). */
  async close(): Promise<void> {
    await this.store.close();
  }
}
