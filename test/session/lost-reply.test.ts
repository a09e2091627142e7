/**
 * Lost replies (issue 13): ioredis resends a command whose reply never arrived when it
 * reconnects, although Redis may have run it. The fault proxy (test/harness/fault-proxy.ts)
 * forwards the session's script, swallows its reply and cuts the connection; the script then
 * runs a second time on the server. Every append and every compare-and-set must still apply
 * exactly once: the operation record (KEYS[2], same slot) turns the second run into a read.
 * Standalone Redis and Cluster, both append modes.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DistributedSessionManager,
  RedisSessionStore,
  type SessionStore,
} from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import {
  type CommandMatch,
  type ProxiedCommand,
  startClusterFaultProxy,
  startFaultProxy,
} from '../harness/fault-proxy.js';

const SCRIPT: CommandMatch = (c: ProxiedCommand) => c.name === 'EVALSHA' || c.name === 'EVAL';

interface Rig {
  name: string;
  /** Client through the proxy (given to the manager; never closed by it). */
  client: Redis | Cluster;
  /** Client straight to Redis, to look at what was stored. */
  direct: Redis | Cluster;
  dropNextReply(match: CommandMatch): Promise<ProxiedCommand | undefined>;
  close(): Promise<void>;
}

function target(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

async function standalone(): Promise<Rig> {
  const proxy = await startFaultProxy({ target: target(servers().redisUrl) });
  const client = new Redis(proxy.url);
  const direct = new Redis(servers().redisUrl);
  return {
    name: 'standalone',
    client,
    direct,
    dropNextReply: (m) => proxy.dropNextReply(m),
    close: async () => {
      client.disconnect();
      direct.disconnect();
      await proxy.close();
    },
  };
}

async function cluster(): Promise<Rig> {
  const cp = await startClusterFaultProxy(servers().clusterNodes);
  const client = new Cluster(cp.startupNodes, { natMap: cp.natMap, retryDelayOnMoved: 50 });
  const direct = new Cluster(servers().clusterNodes);
  return {
    name: 'cluster',
    client,
    direct,
    dropNextReply: (m) => cp.dropNextReply(m),
    close: async () => {
      client.disconnect();
      direct.disconnect();
      await cp.close();
    },
  };
}

for (const make of [standalone, cluster]) {
  for (const appendMode of ['optimistic', 'server'] as const) {
    describe(`lost replies: ${make.name}, appendMode ${appendMode}`, () => {
      let rig: Rig;
      let sessions: DistributedSessionManager;
      const prefix = uniquePrefix('lost');

      beforeAll(async () => {
        rig = await make();
        const store: SessionStore = new RedisSessionStore(rig.client, { appendMode });
        sessions = new DistributedSessionManager({ store, prefix });
        // Loads the scripts, so a dropped reply is the script's answer, not NOSCRIPT.
        await sessions.appendMessage('warm-up', { role: 'system', content: 'warm' });
        await sessions.updateSession('warm-up', (s) => s);
      }, 60_000);

      afterAll(async () => {
        await sessions?.close();
        await rig?.close();
      });

      const stored = async (id: string) =>
        JSON.parse((await rig.direct.get(prefix + id)) ?? '{"messages":[]}') as {
          messages: { content: string }[];
          n?: number;
        };

      it('applies appendMessage once when its reply is lost', async () => {
        const id = 'append-once';
        for (let i = 0; i < 10; i++) {
          const dropped = rig.dropNextReply(SCRIPT);
          const length = await sessions.appendMessage(id, { role: 'user', content: `m${i}` });
          expect((await dropped)?.name).toMatch(/^EVAL/);
          expect(length).toBe(i + 1);
        }
        const s = await stored(id);
        expect(s.messages.map((m) => m.content)).toEqual(
          Array.from({ length: 10 }, (_, i) => `m${i}`),
        );
      }, 60_000);

      it('applies appendMessages (a batch) once when its reply is lost', async () => {
        const id = 'batch-once';
        const dropped = rig.dropNextReply(SCRIPT);
        const length = await sessions.appendMessages(id, [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ]);
        await dropped;
        expect(length).toBe(2);
        expect((await stored(id)).messages.map((m) => m.content)).toEqual(['q', 'a']);
      }, 60_000);

      it('applies a trimming append once when its reply is lost', async () => {
        const id = 'trim-once';
        await sessions.appendMessage(id, { role: 'system', content: 'rules' });
        for (let i = 0; i < 6; i++) {
          const dropped = rig.dropNextReply(SCRIPT);
          await sessions.appendMessage(
            id,
            { role: 'user', content: `${i}`.padEnd(40, '.') },
            { maxBytes: 200 },
          );
          await dropped;
        }
        const s = await stored(id);
        expect(s.messages[0]?.content).toBe('rules');
        const rest = s.messages.slice(1).map((m) => m.content.replace(/\.+$/, ''));
        // The newest ones, each once, in order.
        expect(rest).toEqual(['3', '4', '5'].slice(-rest.length));
        expect(new Set(rest).size).toBe(rest.length);
      }, 60_000);

      it('applies updateSession once when the compare-and-set reply is lost', async () => {
        const id = 'update-once';
        let runs = 0;
        for (let i = 0; i < 5; i++) {
          const dropped = rig.dropNextReply(SCRIPT);
          await sessions.updateSession(id, (s) => {
            runs++;
            return { ...s, n: ((s.n as number | undefined) ?? 0) + 1 };
          });
          await dropped;
        }
        expect((await stored(id)).n).toBe(5);
        // The update function ran once per call: the resent CAS reported success, not a conflict.
        expect(runs).toBe(5);
      }, 60_000);
    });
  }
}
