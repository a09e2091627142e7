import { Agent, type Dispatcher, fetch as undiciFetch } from 'undici';
import { ClosedError, LimitExceededError } from '../core/errors.js';
import { assertDuration } from '../core/timers.js';
import { validateId } from '../core/keys.js';
import { assertNumber } from '../core/validate.js';
import { MAX_TIMER_SECONDS, optionsObject } from './options.js';

/** Options of {@link createHttpPool} / {@link sharedHttpPool}. */
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
 * const pool = sharedHttpPool({ maxConnections: 100 });
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
    for (const [name, pool] of shared) if (pool === this) shared.delete(name);
    await this.dispatcher.close();
  }
}

/** A new pool (you own it: close it when done). */
export function createHttpPool(options: HttpPoolOptions = {}): HttpPool {
  return new HttpPool(options);
}

const shared = new Map<string, HttpPool>();

/**
 * The most named pools {@link sharedHttpPool} holds at once (each keeps sockets open): past it,
 * a new name throws `LimitExceededError`.
 */
export const MAX_SHARED_HTTP_POOLS = 1000;

/**
 * The process-wide pool named `name` (default `'default'`), created with `options` on first
 * use; later calls return the same pool, so every module of a service shares one bound.
 */
export function sharedHttpPool(options: HttpPoolOptions & { name?: string } = {}): HttpPool {
  const o = optionsObject<HttpPoolOptions & { name?: string }>(options, 'options');
  const name = o.name === undefined ? 'default' : validateId(o.name, 'name');
  let pool = shared.get(name);
  if (!pool) {
    if (shared.size >= MAX_SHARED_HTTP_POOLS) {
      throw new LimitExceededError(
        `${shared.size} shared HTTP pools exist (MAX_SHARED_HTTP_POOLS); close one before creating ${JSON.stringify(name.slice(0, 80))}`,
        { context: { max: MAX_SHARED_HTTP_POOLS } },
      );
    }
    const { name: _n, ...rest } = o;
    pool = new HttpPool(rest);
    shared.set(name, pool);
  }
  return pool;
}
