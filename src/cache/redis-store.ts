import type { Cluster, Redis } from 'ioredis';
import type { RedisClient, RedisConnection } from '../core/connection.js';
import { AzscaleError } from '../core/errors.js';
import { ttlMs } from './memory-store.js';
import { RELEASE_LOCK } from './scripts.js';
import { keySlot } from './slot.js';
import type { CacheInvalidationBus, CacheStore, CacheTtlReader } from './store.js';

// Replies that mean "ask another node": retried one key at a time through the Cluster client,
// which follows the redirection.
const REDIRECT = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;

type PipelineReply = [Error | null, unknown][] | null;

/** A value and its remaining time to live in ms (`-1`: no expiry, `-2`: missing). */
export type ValueWithTtl = [value: string | null, ttlMs: number];

interface Waiter<R> {
  resolve(value: R): void;
  reject(e: unknown): void;
}

/** Collects the keys asked for in one tick and fetches them with one call. */
class Batcher<R> {
  private keys: string[] = [];
  private waiters: Waiter<R>[] = [];
  private scheduled = false;

  constructor(
    private readonly one: (key: string) => Promise<R>,
    private readonly many: (keys: string[]) => Promise<R[]>,
  ) {}

  add(key: string): Promise<R> {
    if (!this.scheduled) {
      this.scheduled = true;
      // After the current microtasks: every caller that got here in the same wave joins.
      process.nextTick(this.flush);
    }
    return new Promise<R>((resolve, reject) => {
      this.keys.push(key);
      this.waiters.push({ resolve, reject });
    });
  }

  private readonly flush = (): void => {
    const keys = this.keys;
    const waiters = this.waiters;
    this.keys = [];
    this.waiters = [];
    this.scheduled = false;
    if (keys.length === 1) {
      const w = waiters[0] as Waiter<R>;
      this.one(keys[0] as string).then(w.resolve, w.reject);
      return;
    }
    this.many(keys).then(
      (vals) => {
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter<R>).resolve(vals[i] as R);
      },
      (e: unknown) => {
        for (const w of waiters) w.reject(e);
      },
    );
  };
}

function isCluster(c: RedisClient): c is Cluster {
  return (c as Cluster).isCluster === true;
}

/**
 * {@link CacheStore} on Redis, standalone or Cluster, through a {@link RedisConnection}.
 *
 * Batches: standalone `getMany` is one `MGET`; on a Cluster the keys are grouped by the node that
 * owns their slot and each node gets one pipeline (an `MGET` per slot with several keys, a `GET`
 * otherwise), all nodes in parallel: one round trip per node, never a CROSSSLOT error. Every
 * per-command reply of a pipeline is checked; redirections are retried key by key.
 */
export class RedisCacheStore implements CacheStore, CacheInvalidationBus, CacheTtlReader {
  readonly kind = 'redis';

  /** Host/port (or Cluster seed) description, never a password. */
  readonly description: string;

  constructor(private readonly conn: RedisConnection) {
    this.description = conn.description;
  }

  /** Connection failures and reply errors as azscale errors with no command arguments inside. */
  private fail(e: unknown, operation: string): unknown {
    return this.conn.mapError(e, operation);
  }

  /**
   * Single-key reads issued in the same tick are sent together (one `MGET` on standalone, one
   * pipeline per node on a Cluster): 50 concurrent cache misses cost one round trip, not 50. A
   * lone read is a plain `GET`.
   */
  get(key: string): Promise<string | null> {
    return this.gets.add(key);
  }

  /** {@link get} with the key's remaining time to live in ms (`-1`: none, `-2`: missing). */
  getWithTtl(key: string): Promise<ValueWithTtl> {
    return this.ttlGets.add(key);
  }

  private readonly gets = new Batcher<string | null>(
    (k) => this.getOne(k),
    (keys) => this.getMany(keys),
  );
  private readonly ttlGets = new Batcher<ValueWithTtl>(
    (k) => this.getManyWithTtl([k]).then((r) => r[0] as ValueWithTtl),
    (keys) => this.getManyWithTtl(keys),
  );

  private async getOne(key: string): Promise<string | null> {
    try {
      const c = await this.conn.get();
      return await c.get(key);
    } catch (e) {
      throw this.fail(e, 'GET');
    }
  }

  /** Values and remaining TTLs (ms) of `keys`: `GET` + `PTTL` per key, one round trip per node. */
  async getManyWithTtl(keys: readonly string[]): Promise<ValueWithTtl[]> {
    if (keys.length === 0) return [];
    try {
      const c = await this.conn.get();
      const out: ValueWithTtl[] = new Array(keys.length);
      const run = async (client: RedisClient, idx: readonly number[]) => {
        const p = client.pipeline();
        for (const i of idx) {
          const k = keys[i] as string;
          p.get(k).pttl(k);
        }
        const retry: number[] = [];
        checkReplies((await p.exec()) as PipelineReply, idx.length * 2, (j, err, value) => {
          const i = idx[j >> 1] as number;
          if (err) {
            if (!isCluster(c) || !REDIRECT.test(err.message)) throw err;
            if ((j & 1) === 0) retry.push(i);
            return;
          }
          if ((j & 1) === 0) out[i] = [value as string | null, -2];
          else (out[i] as ValueWithTtl)[1] = value as number;
        });
        // Redirected keys (resharding): one at a time through the Cluster client.
        for (const i of retry) {
          const k = keys[i] as string;
          out[i] = [await c.get(k), await c.pttl(k)];
        }
      };
      if (!isCluster(c)) {
        await run(
          c,
          keys.map((_, i) => i),
        );
      } else {
        const byNode = groupByNode(c, keys);
        await Promise.all([...byNode.values()].map((slots) => run(c, [...slots.values()].flat())));
      }
      return out;
    } catch (e) {
      throw this.fail(e, 'GET+PTTL');
    }
  }

  async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    try {
      const c = await this.conn.get();
      if (!isCluster(c)) return await (c as Redis).mget(keys as string[]);
      return await this.clusterGetMany(c, keys);
    } catch (e) {
      throw this.fail(e, 'MGET');
    }
  }

  private async clusterGetMany(c: Cluster, keys: readonly string[]): Promise<(string | null)[]> {
    const out: (string | null)[] = new Array(keys.length).fill(null);
    const byNode = groupByNode(c, keys);
    const retry: number[] = [];
    await Promise.all(
      [...byNode.values()].map(async (slots) => {
        const p = c.pipeline();
        const plan: number[][] = [];
        for (const idx of slots.values()) {
          if (idx.length === 1) p.get(keys[idx[0] as number] as string);
          else p.mget(idx.map((i) => keys[i] as string));
          plan.push(idx);
        }
        const replies = (await p.exec()) as PipelineReply;
        checkReplies(replies, plan.length, (i, err, value) => {
          const idx = plan[i] as number[];
          if (err) {
            if (!REDIRECT.test(err.message)) throw err;
            retry.push(...idx);
            return;
          }
          if (idx.length === 1) out[idx[0] as number] = value as string | null;
          else {
            const vals = value as (string | null)[];
            for (let j = 0; j < idx.length; j++) out[idx[j] as number] = vals[j] ?? null;
          }
        });
      }),
    );
    if (retry.length > 0) {
      const vals = await Promise.all(retry.map((i) => c.get(keys[i] as string)));
      for (let j = 0; j < retry.length; j++) out[retry[j] as number] = vals[j] ?? null;
    }
    return out;
  }

  async set(key: string, value: string, ttl: number): Promise<void> {
    try {
      const c = await this.conn.get();
      await c.set(key, value, 'PX', ttlMs(ttl));
    } catch (e) {
      throw this.fail(e, 'SET');
    }
  }

  async setMany(entries: ReadonlyArray<readonly [string, string]>, ttl: number): Promise<void> {
    if (entries.length === 0) return;
    const ms = ttlMs(ttl);
    try {
      const c = await this.conn.get();
      if (!isCluster(c)) {
        const p = c.pipeline();
        for (const [k, v] of entries) p.set(k, v, 'PX', ms);
        checkReplies((await p.exec()) as PipelineReply, entries.length, throwOnError);
        return;
      }
      const keys = entries.map((e) => e[0]);
      const byNode = groupByNode(c, keys);
      const retry: number[] = [];
      await Promise.all(
        [...byNode.values()].map(async (slots) => {
          const p = c.pipeline();
          const plan: number[] = [];
          for (const idx of slots.values()) {
            for (const i of idx) {
              const [k, v] = entries[i] as readonly [string, string];
              p.set(k, v, 'PX', ms);
              plan.push(i);
            }
          }
          checkReplies((await p.exec()) as PipelineReply, plan.length, (i, err) => {
            if (!err) return;
            if (!REDIRECT.test(err.message)) throw err;
            retry.push(plan[i] as number);
          });
        }),
      );
      await Promise.all(
        retry.map((i) => {
          const [k, v] = entries[i] as readonly [string, string];
          return c.set(k, v, 'PX', ms);
        }),
      );
    } catch (e) {
      throw this.fail(e, 'SET (batch)');
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      const c = await this.conn.get();
      return (await c.del(key)) > 0;
    } catch (e) {
      throw this.fail(e, 'DEL');
    }
  }

  async setIfAbsent(key: string, value: string, ttl: number): Promise<boolean> {
    try {
      const c = await this.conn.get();
      return (await c.set(key, value, 'PX', ttlMs(ttl), 'NX')) === 'OK';
    } catch (e) {
      throw this.fail(e, 'SET NX');
    }
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    try {
      const c = await this.conn.get();
      // EVAL rather than EVALSHA: the script is tiny, and EVAL never meets NOSCRIPT on a node
      // that restarted or a replica that was promoted.
      return ((await c.eval(RELEASE_LOCK.source, 1, key, value)) as number) > 0;
    } catch (e) {
      throw this.fail(e, 'lock release');
    }
  }

  async ping(): Promise<void> {
    try {
      const c = await this.conn.get();
      if (!isCluster(c)) await c.ping();
    } catch (e) {
      throw this.fail(e, 'PING');
    }
  }

  async publish(channel: string, message: string): Promise<void> {
    try {
      const c = await this.conn.get();
      await c.publish(channel, message);
    } catch (e) {
      throw this.fail(e, 'PUBLISH');
    }
  }

  async subscribe(
    channel: string,
    onMessage: (message: string) => void,
    onReset: () => void,
  ): Promise<() => Promise<void>> {
    let sub: RedisClient;
    try {
      sub = await this.conn.duplicate();
    } catch (e) {
      throw this.fail(e, 'SUBSCRIBE');
    }
    const handler = (ch: string, msg: string) => {
      if (ch === channel) onMessage(msg);
    };
    sub.on('message', handler);
    let first = true;
    // ioredis resubscribes by itself after a reconnect; what was published while the
    // connection was down is lost, so the owner must forget what it may have missed.
    const onReady = () => {
      if (!first) onReset();
    };
    sub.on('ready', onReady);
    try {
      await sub.subscribe(channel);
    } catch (e) {
      // A subscriber that failed is closed, not kept: the owner retries with a new one, and a
      // kept one would reconnect forever (one more connection per retry during an outage).
      sub.off('message', handler);
      sub.off('ready', onReady);
      sub.disconnect();
      throw this.fail(e, 'SUBSCRIBE');
    }
    first = false;
    onReset();
    return async () => {
      sub.off('message', handler);
      sub.off('ready', onReady);
      try {
        if (sub.status === 'ready') await sub.unsubscribe(channel);
      } catch {
        // Closing anyway.
      }
      sub.disconnect();
    };
  }

  async close(): Promise<void> {
    // Subscribers were made with conn.duplicate(), so the connection closes them too.
    await this.conn.close();
  }
}

function throwOnError(_i: number, err: Error | null): void {
  if (err) throw err;
}

function checkReplies(
  replies: PipelineReply,
  expected: number,
  each: (i: number, err: Error | null, value: unknown) => void,
): void {
  if (!replies || replies.length !== expected) {
    throw new AzscaleError(
      `Redis pipeline returned ${replies ? replies.length : 'no'} replies for ${expected} commands`,
    );
  }
  for (let i = 0; i < replies.length; i++) {
    const r = replies[i] as [Error | null, unknown];
    each(i, r[0], r[1]);
  }
}

/** node key ("host:port") -> slot -> indexes into `keys`. */
function groupByNode(c: Cluster, keys: readonly string[]): Map<string, Map<number, number[]>> {
  const table = c.slots;
  const byNode = new Map<string, Map<number, number[]>>();
  for (let i = 0; i < keys.length; i++) {
    const slot = keySlot(keys[i] as string);
    // Unknown owner (slots not loaded yet): group by slot alone; the pipeline still targets one
    // node and a redirect reply is retried.
    const node = table[slot]?.[0] ?? `slot:${slot}`;
    let slots = byNode.get(node);
    if (!slots) byNode.set(node, (slots = new Map()));
    const idx = slots.get(slot);
    if (idx) idx.push(i);
    else slots.set(slot, [i]);
  }
  return byNode;
}
