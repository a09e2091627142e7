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
import { replyErrorAsUnavailable, sanitizeError } from '../core/backend-errors.js';
import { AzscaleError, SerializationError, ValueTooLargeError } from '../core/errors.js';
import { assertOneOf } from '../core/validate.js';
import {
  type DurabilityOptions,
  type DurabilityPolicy,
  durableWrite,
  resolveDurability,
} from '../core/durability.js';
import { newOperationId, operationKey } from './op-key.js';
import { APPEND_SCRIPT, CAS_SCRIPT } from './scripts.js';
import { appendToSessionText } from './splice.js';
import type { SessionAppendOptions, SessionStore } from './store.js';

/**
 * Redis backend. Every operation touches the session key and, for the two scripts, an operation
 * record in the same hash slot (see op-key.ts), so it works unchanged on Redis Cluster and keeps
 * the seed's key layout: no version or lock keys beside `session:{id}`, only short-lived records
 * `{session:<id>}:op:<opId>` that let a resent command find it already ran.
 */

/** Expected values up to this many UTF-16 units are sent whole to the CAS script. */
const CAS_INLINE_MAX = 16 * 1024;

/**
 * How long an operation record outlives its call, in ms: as long as the session (a resend can
 * only matter while it exists), at least a minute, at most a day (records cost memory).
 */
function recordTtlMs(ttlMs: number): number {
  return Math.min(Math.max(ttlMs, 60_000), 86_400_000);
}

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
  /**
   * Acknowledge writes (set, compare-and-set, append, delete) only once `replicas` replicas have
   * them (`WAIT`, `timeout` in seconds); otherwise fail with `DurabilityError`.
   * @default undefined (off)
   */
  durability?: DurabilityOptions;
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
  private readonly durability: DurabilityPolicy | undefined;

  /**
   * @param redis A URL, an ioredis client (never closed by us), `{ nodes }` for a Cluster, or a
   *   {@link RedisConnection} (closed by {@link close} when it owns its client).
   * @param options Connection defaults (timeouts in seconds, used when `redis` is not a
   *   connection) and the append mode.
   */
  constructor(redis: RedisInput | RedisConnection, options: RedisSessionStoreOptions = {}) {
    const { appendMode, durability, ...connectionOptions } = options;
    this.durability = resolveDurability(durability);
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
    await this.exec(
      'session set',
      key,
      (c) => c.set(key, text, 'PX', Math.max(1, Math.round(ttlMs))),
      true,
    );
  }

  async delete(key: string): Promise<boolean> {
    return this.exec('session delete', key, async (c) => (await c.del(key)) === 1, true);
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
    opId?: string,
  ): Promise<boolean> {
    return (await this.cas(key, expected, text, ttlMs, opId ?? newOperationId(), 1)) !== 0;
  }

  /** The CAS script; a replay of a successful run returns `record` (an append: its length). */
  private async cas(
    key: string,
    expected: string | null,
    text: string,
    ttlMs: number,
    opId: string,
    record: number,
  ): Promise<number> {
    const ms = Math.max(1, Math.round(ttlMs));
    const head =
      expected === null
        ? ['0', '']
        : expected.length <= CAS_INLINE_MAX
          ? ['2', expected]
          : ['1', createHash('sha1').update(expected).digest('hex')];
    const reply = await this.exec(
      'session compare-and-set',
      key,
      (c) =>
        CAS_SCRIPT.run(
          c,
          [key, operationKey(key, opId)],
          [...head, text, ms, recordTtlMs(ms), record],
        ),
      true,
    );
    return Number(reply);
  }

  async append(key: string, itemJson: string, options: SessionAppendOptions): Promise<number> {
    // One id for every script this call runs: a replay of any of them finds the record.
    const opId = options.opId ?? newOperationId();
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
        options.trim ? options.maxBytes : undefined,
      );
      const bytes = Buffer.byteLength(text);
      if (bytes > options.maxBytes) {
        throw new ValueTooLargeError(`session at ${key} after the append`, bytes, options.maxBytes);
      }
      const won = await this.cas(key, before, text, options.ttlMs, opId, length);
      // 1: this run wrote; any other non-zero: a replay found the record of the run that wrote.
      if (won === 1) return length;
      if (won !== 0) return won;
    }
    return this.appendOnServer(key, itemJson, options, opId);
  }

  private async appendOnServer(
    key: string,
    itemJson: string,
    options: SessionAppendOptions,
    opId: string,
  ): Promise<number> {
    const ttlMs = Math.max(1, Math.round(options.ttlMs));
    const reply = await this.exec(
      'session append',
      key,
      (c) =>
        APPEND_SCRIPT.run(
          c,
          [key, operationKey(key, opId)],
          [
            itemJson,
            ttlMs,
            options.maxItems ?? 0,
            options.maxBytes,
            options.count ?? 1,
            options.trim ? '1' : '0',
            recordTtlMs(ttlMs),
          ],
        ),
      true,
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
        throw new SerializationError(`stored session at ${key}: unexpected reply ${code}`, {
          context: { key },
        });
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
    write: (c: RedisClient) => Promise<R>,
    durable = false,
  ): Promise<R> {
    const policy = durable ? this.durability : undefined;
    const fn = policy ? (c: RedisClient) => durableWrite(policy, c, key, operation, write) : write;
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
      if (c !== undefined && this.down !== undefined && c.status !== 'end') {
        // Its last connection attempt failed and it has not been ready since: known down. (The
        // status alone does not say so: between a failed attempt and the next it may still
        // read "connecting".) An ended client goes on to get(), which starts it again.
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
          // The raw ReplyError carries the command's arguments (the session text).
          cause: e instanceof AzscaleError ? e : sanitizeError(e),
          context: { key, operation },
        });
      }
      // Core maps and sanitises; the session's contract makes every reply error a
      // BackendUnavailableError (context.reply holds the reply code).
      const mapped = replyErrorAsUnavailable(this.connection.mapError(e, operation));
      mapped.context.key ??= key;
      throw mapped;
    }
  }
}
