/**
 * Issue 13 for sessions: long conversations trim by bytes (`maxBytes`, keeping the first system
 * message) on memory, Redis and Cluster alike; durations and sizes are validated at the edge
 * (Redis never sees an invalid expire); Redis reply errors come back typed and without the
 * session text ioredis attaches to them.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isBackendUnavailableError,
  isValidationError,
  isValueTooLargeError,
} from '../../src/core/errors.js';
import calculateSlot from 'cluster-key-slot';
import { DistributedSessionManager, MemorySessionStore } from '../../src/session/index.js';
import { keySlot, operationKey } from '../../src/session/op-key.js';
import { contractBackends } from '../contract/backends.js';
import { servers, startRedisServer, uniquePrefix } from '../harness/env.js';

const managers: DistributedSessionManager[] = [];
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
});

function manager(opts: ConstructorParameters<typeof DistributedSessionManager>[0] = {}) {
  const m = new DistributedSessionManager({ prefix: uniquePrefix('hard'), ...opts });
  managers.push(m);
  return m;
}

for (const backend of contractBackends()) {
  describe(`appendMessage maxBytes (${backend.name})`, () => {
    it('drops the oldest messages, keeps the first system message and never exceeds maxBytes', async () => {
      const redis = backend.redis();
      const sessions = manager(redis ? { redis } : {});
      const id = 'long-conversation';
      await sessions.appendMessage(id, { role: 'system', content: 'You are terse.' });
      const maxBytes = 2048;
      let length = 0;
      for (let i = 0; i < 200; i++) {
        length = await sessions.appendMessages(
          id,
          [
            { role: 'user', content: `question ${i} ${'q'.repeat(100)}` },
            { role: 'assistant', content: `answer ${i} ${'é'.repeat(50)}` },
          ],
          { maxBytes },
        );
        if (i % 50 === 0) {
          const s = await sessions.getSession(id);
          expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThanOrEqual(maxBytes);
        }
      }
      const s = await sessions.getSession(id);
      expect(s.messages).toHaveLength(length);
      expect(s.messages[0]).toEqual({ role: 'system', content: 'You are terse.' });
      expect(s.messages.at(-2)?.content).toMatch(/^question 199 /);
      expect(s.messages.at(-1)?.content).toMatch(/^answer 199 /);
      // Contiguous: the kept turns are the latest ones, in order, none twice.
      const turns = s.messages.slice(1).map((m) => Number(/\d+/.exec(String(m.content))?.[0]));
      for (let i = 1; i < turns.length; i++) expect(turns[i]).toBeGreaterThanOrEqual(turns[i - 1]!);
      expect(turns.at(-1)).toBe(199);
      // Without maxBytes the same session keeps growing to the session limit, as before.
      expect(await sessions.appendMessage(id, { role: 'user', content: 'no trim' })).toBe(
        length + 1,
      );
    });

    it('keeps a system message that is not the first one, and fails when the new messages alone do not fit', async () => {
      const redis = backend.redis();
      const sessions = manager(redis ? { redis } : {});
      const id = 'system-later';
      await sessions.saveSession(id, {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'system', content: 'pinned' },
          { role: 'user', content: 'x'.repeat(300) },
        ],
        title: 'kept field',
      });
      await sessions.appendMessage(
        id,
        { role: 'user', content: 'y'.repeat(300) },
        { maxBytes: 500 },
      );
      const s = await sessions.getSession(id);
      expect(s.messages.map((m) => m.role)).toEqual(['system', 'user']);
      expect(s.messages[1]?.content).toBe('y'.repeat(300));
      expect(s.title).toBe('kept field');
      const before = JSON.stringify(await sessions.getSession(id));
      const err = await sessions
        .appendMessage(id, { role: 'user', content: 'z'.repeat(600) }, { maxBytes: 500 })
        .catch((e: unknown) => e);
      expect(isValueTooLargeError(err)).toBe(true);
      expect(JSON.stringify(await sessions.getSession(id))).toBe(before);
    });
  });
}

describe("operation records share the session key's Cluster slot", () => {
  const ids = [
    'plain',
    'with{tag}inside',
    'a}b',
    '{}empty-tag',
    '{unclosed',
    '}{x}',
    'x{}y}z',
    'é{ü}',
    '}}',
  ];

  it('computes the slot as Redis does, for any key', async () => {
    // Redis itself is the reference (CLUSTER KEYSLOT): an empty tag ("{}") means the whole key.
    const node = new Redis(servers().clusterNodes[0]!.port, servers().clusterNodes[0]!.host);
    try {
      for (const id of ids) {
        const key = `session:${id}`;
        const op = operationKey(key, 'op1');
        expect(await node.cluster('KEYSLOT', op), key).toBe(await node.cluster('KEYSLOT', key));
      }
    } finally {
      node.disconnect();
    }
    for (let i = 0; i < 2000; i++) {
      const key = `k${i}:${Math.random().toString(36)}`;
      expect(keySlot(key)).toBe(calculateSlot(key));
    }
  });

  it('lets every script run on the Cluster whatever braces the id holds', async () => {
    const cluster = contractBackends()[2]!;
    const sessions = manager({ redis: cluster.redis() });
    for (const id of ids) {
      expect(await sessions.appendMessage(id, { role: 'user', content: id })).toBe(1);
      await sessions.updateSession(id, (s) => ({ ...s, seen: true }));
      expect(
        await sessions.appendMessages(id, [{ role: 'user', content: 'x' }], { maxBytes: 4096 }),
      ).toBe(2);
      expect((await sessions.getSession(id)).seen).toBe(true);
    }
  });
});

describe('validation at the edge', () => {
  it('rejects a bad maxBytes with a ValidationError naming it', async () => {
    const sessions = manager();
    for (const maxBytes of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100', null]) {
      const e = await sessions
        .appendMessage('v', { role: 'user', content: 'x' }, { maxBytes: maxBytes as number })
        .catch((x: unknown) => x);
      expect(isValidationError(e), String(maxBytes)).toBe(true);
      expect((e as { option?: string }).option).toBe('maxBytes');
    }
    // Above maxValueBytes it acts as maxValueBytes.
    expect(
      await sessions.appendMessage('v', { role: 'user', content: 'x' }, { maxBytes: 2 ** 40 }),
    ).toBe(1);
  });

  it('accepts every ttl up to ten years and rejects the rest naming the option', async () => {
    for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e12, '60']) {
      let err: unknown;
      try {
        manager({ ttl: ttl as number });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), String(ttl)).toBe(true);
      expect((err as { option?: string }).option).toBe('ttl');
    }
    for (const [option, value] of [
      ['connectTimeout', -1],
      ['commandTimeout', Number.NaN],
      ['commandTimeout', 1e10],
    ] as const) {
      expect(() => manager({ [option]: value })).toThrow(/connectTimeout|commandTimeout/);
    }
    expect(() => new MemorySessionStore({ sweepInterval: 30 * 86_400 })).toThrow(/sweepInterval/);
  });

  it('stores a session with a ten-year ttl on Redis (no invalid expire reaches Redis)', async () => {
    const redis = contractBackends()[1]!.redis() as string;
    const sessions = manager({ redis, ttl: 10 * 365 * 86_400 });
    await sessions.appendMessage('decade', { role: 'user', content: 'x' });
    await sessions.saveSession('decade2', { messages: [] });
    await sessions.updateSession('decade2', (s) => s);
    expect(await sessions.extendSession('decade')).toBe(true);
    expect(await sessions.remainingTtl('decade')).toBeGreaterThan(9 * 365 * 86_400);
  });
});

describe('Redis reply errors', () => {
  it('become BackendUnavailableError without the session text (OOM, READONLY)', async () => {
    const server = await startRedisServer();
    const admin = new Redis(server.url);
    try {
      const sessions = manager({ redis: server.url });
      const secret = 'credit card 4111 1111 1111 1111';
      await sessions.appendMessage('s', { role: 'user', content: 'first' });
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
      for (const call of [
        () => sessions.appendMessage('s', { role: 'user', content: secret }),
        () => sessions.saveSession('s', { messages: [{ role: 'user', content: secret }] }),
        () => sessions.updateSession('s', (x) => ({ ...x, note: secret })),
      ]) {
        const e = await call().catch((x: unknown) => x);
        expect(isBackendUnavailableError(e)).toBe(true);
        expect((e as { context: { reply?: string } }).context.reply).toBe('OOM');
        const seen = JSON.stringify(e, Object.getOwnPropertyNames(e as object));
        const all = `${seen} ${(e as Error).message} ${String((e as Error).cause)} ${JSON.stringify((e as Error).cause)} ${Object.keys(((e as Error).cause ?? {}) as object).join()}`;
        expect(all).not.toContain('4111');
        expect(((e as Error).cause as { command?: unknown }).command).toBeUndefined();
      }
      await admin.config('SET', 'maxmemory', '0');
      // A replica refuses writes with READONLY.
      await admin.replicaof('127.0.0.1', '1');
      const e = await sessions
        .appendMessage('s', { role: 'user', content: secret })
        .catch((x: unknown) => x);
      expect(isBackendUnavailableError(e)).toBe(true);
      expect((e as { context: { reply?: string } }).context.reply).toBe('READONLY');
      expect(JSON.stringify(e)).not.toContain('4111');
      await admin.replicaof('NO', 'ONE');
    } finally {
      admin.disconnect();
      await server.stop();
    }
  }, 60_000);
});
