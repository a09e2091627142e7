/**
 * Bounded keep-alive HTTP pools for outbound calls (LLM APIs), and the registry that shares named
 * pools across a service's modules: an explicit, closable object ({@link defaultHttpPools} is
 * the one `sharedHttpPool` uses), not a hidden module map.
 */
import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { ClosedError, LimitExceededError } from '../core/errors.js';
import { assertDuration } from '../core/timers.js';
import { validateId } from '../core/keys.js';
import { assertNumber } from '../core/validate.js';
import { MAX_TIMER_SECONDS, optionsObject } from './options.js';

/** Options of {@link createHttpPool}, {@link HttpPoolRegistry.get} and {@link sharedHttpPool}. */
export interface HttpPoolOptions {
  /**
   * Open connections per origin (scheme + host + port), the seed's `max_connections`. Requests
   * beyond it queue inside the pool instead of opening more sockets. @default 100
   */
  maxConnections?: number;
  /** Distinct origins the pool may talk to; beyond it requests fail. @default no limit */
  maxOrigins?: number;
  /**
   * Seconds an idle connection is kept for reuse. Every timeout of the pool is at most 2147483
   * seconds (one Node timer, 24.8 days). @default 30
   */
  keepAliveTimeout?: number;
  /** Seconds to establish a connection (TCP + TLS). @default 10 */
  connectTimeout?: number;
  /**
   * Seconds to wait for response headers. LLM APIs can take long before the first byte.
   * @default 300
   */
  headersTimeout?: number;
  /** Seconds allowed between two body chunks (streamed tokens). @default 300 */
  bodyTimeout?: number;
  /** Requests pipelined per connection (1 = none, the safe choice for APIs). @default 1 */
  pipelining?: number;
}

/** Connection counts of one origin. */
export interface HttpPoolOriginStats {
  /** Open connections to the origin. */
  connected: number;
  /** Open connections with no request on them. */
  free: number;
  /** Requests waiting for a connection. */
  pending: number;
  /** Requests in progress. */
  running: number;
  /** All requests to the origin: pending, queued or running. */
  size: number;
}

/**
 * A bounded, keep-alive HTTP connection pool (an undici `Agent`) for outbound calls such as LLM
 * APIs. Reusing connections saves a TCP + TLS handshake per call; the bound keeps a traffic
 * spike from opening thousands of sockets to one provider.
 *
 * @example
 * const pool = defaultHttpPools.get({ maxConnections: 100 }); // or sharedHttpPool(...)
 * const res = await pool.fetch('https://api.openai.com/v1/chat/completions', { method: 'POST', body });
 * // or hand pool.dispatcher to any undici-based client (OpenAI SDK: `fetchOptions: { dispatcher }`)
 */
export class HttpPool {
  /** The undici dispatcher; pass it as `dispatcher` to undici's `fetch`/`request`. */
  readonly dispatcher: Agent;
  /** The per-origin connection bound. */
  readonly maxConnections: number;
  private closed = false;

  constructor(options: HttpPoolOptions = {}) {
    const o = optionsObject<HttpPoolOptions>(options, 'options');
    // undici arms one Node timer per timeout: past 2^31-1 ms it would fire after 1 ms.
    const secs = (v: unknown, name: string, d: number) =>
      (v === undefined ? d : assertDuration(v, name, { max: MAX_TIMER_SECONDS })) * 1000;
    this.maxConnections =
      o.maxConnections === undefined
        ? 100
        : assertNumber(o.maxConnections, 'maxConnections', { integer: true, min: 1 });
    const maxOrigins =
      o.maxOrigins === undefined
        ? undefined
        : assertNumber(o.maxOrigins, 'maxOrigins', { integer: true, min: 1 });
    const pipelining =
      o.pipelining === undefined
        ? 1
        : assertNumber(o.pipelining, 'pipelining', { integer: true, min: 0 });
    this.dispatcher = new Agent({
      connections: this.maxConnections,
      ...(maxOrigins !== undefined ? { maxOrigins } : {}),
      keepAliveTimeout: secs(o.keepAliveTimeout, 'keepAliveTimeout', 30),
      connectTimeout: secs(o.connectTimeout, 'connectTimeout', 10),
      headersTimeout: secs(o.headersTimeout, 'headersTimeout', 300),
      bodyTimeout: secs(o.bodyTimeout, 'bodyTimeout', 300),
      pipelining,
    });
  }

  /** `fetch` through this pool (undici's fetch with this dispatcher). */
  fetch(
    input: Parameters<typeof undiciFetch>[0],
    init: Parameters<typeof undiciFetch>[1] = {},
  ): ReturnType<typeof undiciFetch> {
    if (this.closed) return Promise.reject(new ClosedError('HTTP pool is closed'));
    return undiciFetch(input, { ...init, dispatcher: this.dispatcher as Dispatcher });
  }

  /** Connection counts per origin. */
  stats(): Record<string, HttpPoolOriginStats> {
    const out: Record<string, HttpPoolOriginStats> = {};
    for (const [origin, s] of Object.entries(this.dispatcher.stats)) {
      const p = s as Partial<HttpPoolOriginStats>;
      out[origin] = {
        connected: p.connected ?? 0,
        free: p.free ?? 0,
        pending: p.pending ?? 0,
        running: p.running ?? 0,
        size: p.size ?? 0,
      };
    }
    return out;
  }

  /** Waits for running requests, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    releases.get(this)?.();
    await this.dispatcher.close();
  }
}

/** A new pool (you own it: close it when done). */
export function createHttpPool(options: HttpPoolOptions = {}): HttpPool {
  return new HttpPool(options);
}

// How a pool made by a registry leaves it when closed directly (`pool.close()`).
const releases = new WeakMap<HttpPool, () => void>();

/**
 * The most named pools {@link sharedHttpPool} (the default registry) holds at once (each keeps
 * sockets open): past it, a new name throws `LimitExceededError`.
 */
export const MAX_SHARED_HTTP_POOLS = 1000;

/** Options of {@link HttpPoolRegistry}. */
export interface HttpPoolRegistryOptions {
  /**
   * Most named pools held at once; past it a new name throws `LimitExceededError`.
   * @default 1000 ({@link MAX_SHARED_HTTP_POOLS})
   */
  maxPools?: number;
}

/**
 * Named HTTP pools shared by the modules of one service, so they share one connection bound
 * per provider. The registry owns its pools: `close()` closes every one of them (at shutdown,
 * or between tests); a pool closed on its own leaves the registry, and the next `get` of its
 * name makes a new one. {@link defaultHttpPools} is the instance {@link sharedHttpPool} uses;
 * make your own to keep a component's pools (and their closing) apart.
 *
 * @example
 * const pools = new HttpPoolRegistry();
 * const llm = pools.get({ name: 'llm', maxConnections: 50 });
 * // ... at shutdown:
 * await pools.close();
 */
export class HttpPoolRegistry {
  private readonly pools = new Map<string, HttpPool>();
  private readonly maxPools: number;

  constructor(options: HttpPoolRegistryOptions = {}) {
    const o = optionsObject<HttpPoolRegistryOptions>(options, 'options');
    this.maxPools =
      o.maxPools === undefined
        ? MAX_SHARED_HTTP_POOLS
        : assertNumber(o.maxPools, 'maxPools', { integer: true, min: 1 });
  }

  /**
   * The pool named `name` (default `'default'`), made with `options` on first use; later calls
   * return the same pool (their options are ignored while it is open).
   */
  get(options: HttpPoolOptions & { name?: string } = {}): HttpPool {
    const o = optionsObject<HttpPoolOptions & { name?: string }>(options, 'options');
    const name = o.name === undefined ? 'default' : validateId(o.name, 'name');
    const open = this.pools.get(name);
    if (open) return open;
    if (this.pools.size >= this.maxPools) {
      throw new LimitExceededError(
        `${this.pools.size} shared HTTP pools exist (the registry's maxPools); close one before creating ${JSON.stringify(name.slice(0, 80))}`,
        { context: { max: this.maxPools } },
      );
    }
    const { name: _n, ...rest } = o;
    const pool = new HttpPool(rest);
    this.pools.set(name, pool);
    releases.set(pool, () => {
      if (this.pools.get(name) === pool) this.pools.delete(name);
    });
    return pool;
  }

  /** True when a pool named `name` is open in this registry. */
  has(name: string): boolean {
    return this.pools.has(name);
  }

  /** The names of the open pools. */
  names(): string[] {
    return [...this.pools.keys()];
  }

  /** How many pools are open. */
  get size(): number {
    return this.pools.size;
  }

  /** Closes and removes the pool named `name`; false when there was none. */
  async delete(name: string): Promise<boolean> {
    const pool = this.pools.get(name);
    if (!pool) return false;
    await pool.close();
    return true;
  }

  /**
   * Closes every pool (waiting for their running requests) and empties the registry. It stays
   * usable: a later `get` makes a new pool.
   */
  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.close()));
  }
}

/**
 * The registry {@link sharedHttpPool} uses: one per copy of azscale loaded in the process. Close
 * it at shutdown (`await defaultHttpPools.close()`) to close every shared pool.
 */
export const defaultHttpPools: HttpPoolRegistry = new HttpPoolRegistry();

/**
 * The pool named `name` (default `'default'`) of {@link defaultHttpPools}, created with `options`
 * on first use; later calls return the same pool, so every module of a service shares one bound.
 * Same as `defaultHttpPools.get(options)`.
 */
export function sharedHttpPool(options: HttpPoolOptions & { name?: string } = {}): HttpPool {
  return defaultHttpPools.get(options);
}
