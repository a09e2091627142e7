/** Clients passed in are used as they are and never closed; AUTH works and fails cleanly. */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, SerializationError } from '../../src/core/errors.js';
import { DistributedSessionManager, RedisSessionStore } from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

describe('session manager with clients it does not own', () => {
  it('uses an ioredis Redis passed in and leaves it open on close()', async () => {
    const client = new Redis(servers().redisUrl);
    const s = new DistributedSessionManager({ redis: client, prefix: uniquePrefix('own') });
    expect(await s.appendMessage('o1', { content: 'x' })).toBe(1);
    await s.close();
    expect(client.status).toBe('ready');
    expect(await client.get(`${s.prefix}o1`)).toBe('{"messages":[{"content":"x"}]}');
    client.disconnect();
  });

  it('uses an ioredis Cluster passed in and leaves it open on close()', async () => {
    const cluster = new Cluster(servers().clusterNodes);
    const s = new DistributedSessionManager({ redis: cluster, prefix: uniquePrefix('own') });
    // Ids that hash to different slots (and so, likely, different masters).
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f']) {
      expect(await s.appendMessage(id, { content: id })).toBe(1);
      expect(await s.updateSession(id, (x) => ({ ...x, seen: true }))).toMatchObject({
        seen: true,
      });
    }
    await s.close();
    expect(cluster.status).toBe('ready');
    expect(JSON.parse((await cluster.get(`${s.prefix}f`)) as string)).toEqual({
      messages: [{ content: 'f' }],
      seen: true,
    });
    cluster.disconnect();
  });
});

describe('session manager with requirepass', () => {
  it('works with the password in the URL', async () => {
    const s = new DistributedSessionManager({
      redis: servers().redisAuthUrl,
      prefix: uniquePrefix('auth'),
    });
    expect(await s.appendMessage('p', { content: 'x' })).toBe(1);
    await s.close();
  });

  it('a wrong password is a BackendUnavailableError that does not contain it', async () => {
    const url = new URL(servers().redisAuthUrl);
    url.password = 'wrong-pass-xyz';
    const s = new DistributedSessionManager({ redis: url.toString(), connectTimeout: 2 });
    const e = await s.getSession('p').catch((err) => err);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e.message).not.toContain('wrong-pass-xyz');
    expect(String(e.cause?.message ?? '')).not.toContain('wrong-pass-xyz');
    await s.close();
  });
});

describe('Lua script cache loss (SCRIPT FLUSH, failover to a fresh node)', () => {
  it('falls back from EVALSHA to EVAL on standalone and on every Cluster master', async () => {
    const flushAll = async (c: Redis | Cluster) => {
      if (c instanceof Cluster) await Promise.all(c.nodes('master').map((n) => n.script('FLUSH')));
      else await c.script('FLUSH');
    };
    const targets: [string, Redis | Cluster][] = [
      ['standalone', new Redis(servers().redisUrl)],
      ['cluster', new Cluster(servers().clusterNodes)],
    ];
    for (const [name, client] of targets) {
      const store = new RedisSessionStore(client, { appendMode: 'server' });
      const s = new DistributedSessionManager({ store, prefix: uniquePrefix('flush') });
      for (const id of ['a', 'b', 'c', 'd']) {
        await flushAll(client);
        expect(await s.appendMessage(id, { content: 1 }), name).toBe(1);
        await flushAll(client);
        const out = await s.updateSession(id, (x) => ({ ...x, v: 2 }));
        expect(out, name).toEqual({ messages: [{ content: 1 }], v: 2 });
      }
      await s.close();
      client.disconnect();
    }
  });
});

describe('a session key holding another Redis type', () => {
  it('is a SerializationError for reads, appends and updates (standalone and Cluster)', async () => {
    const targets: [string, Redis | Cluster][] = [
      ['standalone', new Redis(servers().redisUrl)],
      ['cluster', new Cluster(servers().clusterNodes)],
    ];
    for (const [name, client] of targets) {
      for (const appendMode of ['optimistic', 'server'] as const) {
        const store = new RedisSessionStore(client, { appendMode });
        const s = new DistributedSessionManager({ store, prefix: uniquePrefix('type') });
        await client.hset(`${s.prefix}h`, 'a', '1');
        await expect(s.getSession('h'), name).rejects.toBeInstanceOf(SerializationError);
        await expect(s.appendMessage('h', { c: 1 }), name).rejects.toBeInstanceOf(
          SerializationError,
        );
        await expect(
          s.updateSession('h', (x) => x),
          name,
        ).rejects.toBeInstanceOf(SerializationError);
        expect(await client.type(`${s.prefix}h`)).toBe('hash');
        await s.close();
      }
      client.disconnect();
    }
  });
});
