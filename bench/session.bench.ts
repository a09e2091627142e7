/**
 * Session: our get+save round trip and atomic appendMessage against the seed's raw pattern on
 * ioredis (GET + JSON.parse, JSON.stringify + SETEX) on the same Redis, sequential and with 50
 * callers in flight; and get+save against connect-redis's store.get + store.set (node-redis) at
 * 50 callers.
 */
import { RedisStore } from 'connect-redis';
import type { SessionData as ExpressSessionData } from 'express-session';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { DistributedSessionManager, type SessionData } from '../src/session/index.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

const TTL = 3600;
const IDS = 100;
const MAX_MESSAGES = 50;
// Alternating rounds, best of each side kept: a shared CI machine's load comes in bursts.
const ROUNDS = 5;

function session(n: number): SessionData {
  return {
    messages: Array.from({ length: n }, (_, i) => ({
      role: i % 2 ? 'assistant' : 'user',
      content: `message ${i} `.repeat(8),
    })),
    user: { id: 'u-1', plan: 'pro', started: 1700000000 },
  };
}

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const prefix = `bench-session-${process.pid}:`;
  const sessions = new DistributedSessionManager({
    redis: ctx.redisUrl,
    prefix,
    ttl: TTL,
    maxMessages: MAX_MESSAGES,
  });
  const raw = new Redis(ctx.redisUrl);
  const nodeRedis = createClient({ url: ctx.redisUrl });
  await nodeRedis.connect();
  const crPrefix = `bench-connect-redis-${process.pid}:`;
  const store = new RedisStore({ client: nodeRedis, prefix: crPrefix, ttl: TTL });

  try {
    const seedText = JSON.stringify(session(20));
    const ids = Array.from({ length: IDS }, (_, i) => `s${i}`);
    const pipe = raw.pipeline();
    for (const id of ids) {
      pipe.setex(`${prefix}${id}`, TTL, seedText);
      pipe.setex(`${prefix}raw-${id}`, TTL, seedText);
      pipe.setex(`${crPrefix}${id}`, TTL, seedText);
    }
    await pipe.exec();

    let a = 0;
    let b = 0;
    const oursGetSave = async () => {
      const id = ids[a++ % IDS] as string;
      const s = await sessions.getSession(id);
      await sessions.saveSession(id, s);
    };
    const rawGetSave = async () => {
      const key = `${prefix}raw-${ids[b++ % IDS]}`;
      const s = JSON.parse((await raw.get(key)) as string) as SessionData;
      await raw.setex(key, TTL, JSON.stringify(s));
    };

    let c = 0;
    let d = 0;
    const msg = { role: 'user', content: 'what is the weather like in Paris today?' };
    const oursAppend = () => sessions.appendMessage(ids[c++ % IDS] as string, msg);
    const rawAppend = async () => {
      // The seed's chat endpoint: read, append, cap the history, write back.
      const key = `${prefix}raw-${ids[d++ % IDS]}`;
      const s = JSON.parse((await raw.get(key)) as string) as SessionData;
      s.messages.push(msg);
      if (s.messages.length > MAX_MESSAGES) s.messages = s.messages.slice(-MAX_MESSAGES);
      await raw.setex(key, TTL, JSON.stringify(s));
      return s.messages.length;
    };

    let e = 0;
    const crGetSet = async () => {
      const sid = ids[e++ % IDS] as string;
      const s = (await store.get(sid)) as ExpressSessionData;
      await store.set(sid, s);
    };

    for (const concurrency of [1, 50]) {
      const iterations = concurrency === 1 ? 2000 : 4000;
      const label = concurrency === 1 ? 'sequential' : `${concurrency} concurrent`;
      rows.push(
        await compare({
          group: 'session',
          case: `get+save, 20 messages, ${label}`,
          ours: oursGetSave,
          theirsLabel: 'ioredis GET+SETEX',
          theirs: rawGetSave,
          iterations,
          concurrency,
          rounds: ROUNDS,
          // Issue 14: <= 1.05x sequential (0.1.0 measured 1.16x-1.24x in an outside run).
          maxRatio: concurrency === 1 ? 1.05 : 1.15,
        }),
      );
      rows.push(
        await compare({
          group: 'session',
          case: `appendMessage (atomic), ${label}`,
          ours: oursAppend,
          theirsLabel: 'ioredis GET+SETEX (not atomic)',
          theirs: rawAppend,
          iterations,
          concurrency,
          rounds: ROUNDS,
          maxRatio: 1.5,
        }),
      );
    }
    rows.push(
      await compare({
        group: 'session',
        case: 'get+save, 20 messages, 50 concurrent',
        ours: oursGetSave,
        theirsLabel: 'connect-redis get+set',
        theirs: crGetSet,
        iterations: 4000,
        concurrency: 50,
        rounds: ROUNDS,
        minSpeedup: 1,
      }),
    );
  } finally {
    const keys = [...(await raw.keys(`${prefix}*`)), ...(await raw.keys(`${crPrefix}*`))];
    if (keys.length > 0) await raw.del(...keys);
    await sessions.close();
    raw.disconnect();
    await nodeRedis.quit();
  }
  return rows;
};

export default suite;
