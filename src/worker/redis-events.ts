import type { Redis } from 'ioredis';
import type { RedisClient, RedisConnection } from '../core/connection.js';
import { type RawTaskEvent, type TaskEventReader, parseStreamEvent } from './event-source.js';

/** How long past its BLOCK time a read may stay unanswered before its connection is dropped. */
const READ_GRACE_MS = 2000;

type StreamEntries = [string, string[]][];

/**
 * Reads a queue's events stream: XREAD BLOCK on a connection of its own (opened on the first
 * read, so a queue nobody listens to holds no extra connection), XRANGE on the shared one.
 */
export function openRedisEventReader(
  conn: RedisConnection,
  key: string,
  mapError: (e: unknown, op: string) => unknown,
): TaskEventReader {
  let client: RedisClient | undefined;
  let closed = false;

  const drop = (c: RedisClient) => {
    if (client === c) client = undefined;
    c.disconnect();
    void conn.release(c);
  };

  return {
    async head(): Promise<string> {
      try {
        const r = (await conn.run('worker events', (c) =>
          c.xrevrange(key, '+', '-', 'COUNT', 1),
        )) as StreamEntries;
        return r[0]?.[0] ?? '0-0';
      } catch (e) {
        throw mapError(e, 'events');
      }
    },

    async read(after: string, blockMs: number): Promise<RawTaskEvent[]> {
      if (closed) return [];
      if (!client) {
        const c = await conn.duplicate({ commandTimeout: 0 });
        if (closed) {
          await conn.release(c);
          return [];
        }
        client = c;
      }
      const c = client as Redis;
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<'stuck'>((resolve) => {
        timer = setTimeout(() => resolve('stuck'), blockMs + READ_GRACE_MS);
      });
      try {
        const r = await Promise.race([
          c.xread('COUNT', 500, 'BLOCK', Math.max(1, Math.round(blockMs)), 'STREAMS', key, after),
          stuck,
        ]);
        if (r === 'stuck') {
          // A blocking read that outlives its BLOCK time sits on a dead or hung socket.
          drop(c);
          return [];
        }
        if (!r) return [];
        const entries = (r as [string, StreamEntries][])[0]?.[1] ?? [];
        return entries.map(([id, fields]) => parseStreamEvent(id, fields));
      } catch (e) {
        if (closed) return [];
        drop(c);
        throw mapError(e, 'events');
      } finally {
        clearTimeout(timer);
      }
    },

    async range(after: string, count: number): Promise<RawTaskEvent[]> {
      try {
        const r = (await conn.run('worker events', (c) =>
          c.xrange(key, `(${after}`, '+', 'COUNT', count),
        )) as StreamEntries;
        return r.map(([id, fields]) => parseStreamEvent(id, fields));
      } catch (e) {
        throw mapError(e, 'events');
      }
    },

    async close(): Promise<void> {
      closed = true;
      if (client) drop(client);
    },
  };
}
