/**
 * API contract of DistributedSessionManager, written from the issue text only: every name,
 * option, default and return shape the issue gives, on the embedded store, standalone Redis and
 * Redis Cluster.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import {
  AzscaleError,
  BackendUnavailableError,
  DistributedSessionManager,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
  newSessionId,
} from '../../src/index.js';
import * as sessionModule from '../../src/session/index.js';
import { uniquePrefix } from '../harness/env.js';
import { type Raw, contractBackends, sleep } from '../contract/backends.js';

const backends = contractBackends('embedded memory');

describe('session API contract: exports', () => {
  it('is exported from azscale and azscale/session', () => {
    expect(sessionModule.DistributedSessionManager).toBe(root.DistributedSessionManager);
    expect(sessionModule.newSessionId).toBe(root.newSessionId);
    expect(sessionModule.BackendUnavailableError).toBe(BackendUnavailableError);
    expect(sessionModule.ValidationError).toBe(ValidationError);
    expect(typeof DistributedSessionManager).toBe('function');
  });

  it('newSessionId() is URL-safe with at least 128 bits of randomness', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const id = newSessionId();
      expect(id).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(encodeURIComponent(id)).toBe(id);
      // base64url: 6 bits per character; hex: 4.
      const bits = /^[0-9a-f]+$/.test(id) ? id.length * 4 : id.length * 6;
      expect(bits).toBeGreaterThanOrEqual(128);
      ids.add(id);
    }
    expect(ids.size).toBe(1000);
  });

  it('defaults: ttl 3600 seconds and prefix "session:"', async () => {
    const s = new DistributedSessionManager();
    expect(s.ttl).toBe(3600);
    expect(s.prefix).toBe('session:');
    await s.close();
  });
});

for (const b of backends) {
  describe(`session API contract: DistributedSessionManager on ${b.name}`, () => {
    let raw: Raw | undefined;
    const open: DistributedSessionManager[] = [];
    const make = (o: Record<string, unknown> = {}) => {
      const redis = b.redis();
      const s = new DistributedSessionManager({
        ...(redis === undefined ? {} : { redis }),
        prefix: uniquePrefix('i3'),
        ...o,
      });
      open.push(s);
      return s;
    };

    beforeAll(() => {
      raw = b.raw();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });
    afterAll(async () => {
      raw?.disconnect();
    });

    it('getSession of an unknown id resolves { messages: [] }', async () => {
      const s = make();
      expect(await s.getSession(newSessionId())).toEqual({ messages: [] });
    });

    it('saveSession writes the whole value; getSession reads it back', async () => {
      const s = make();
      const id = newSessionId();
      const data = { messages: [{ role: 'user', content: 'hi' }], user: 'u1', n: 3 };
      await s.saveSession(id, data);
      expect(await s.getSession(id)).toEqual(data);
      await s.saveSession(id, { messages: [] });
      expect(await s.getSession(id)).toEqual({ messages: [] });
    });

    it('deleteSession removes the session', async () => {
      const s = make();
      const id = newSessionId();
      await s.saveSession(id, { messages: [{ role: 'user', content: 'x' }] });
      await s.deleteSession(id);
      expect(await s.getSession(id)).toEqual({ messages: [] });
    });

    it('extendSession returns whether the session existed and refreshes the TTL', async () => {
      const s = make({ ttl: 0.6 });
      const id = newSessionId();
      expect(await s.extendSession(id)).toBe(false);
      await s.saveSession(id, { messages: [{ role: 'user', content: 'a' }] });
      for (let i = 0; i < 4; i++) {
        await sleep(300);
        expect(await s.extendSession(id)).toBe(true);
      }
      // 1.2 s after the write, well past the TTL: alive only because it was extended.
      expect((await s.getSession(id)).messages).toHaveLength(1);
      await sleep(900);
      expect(await s.getSession(id)).toEqual({ messages: [] });
      expect(await s.extendSession(id)).toBe(false);
    });

    it('saveSession expires after ttl seconds (SETEX semantics)', async () => {
      const s = make({ ttl: 0.4 });
      const id = newSessionId();
      await s.saveSession(id, { messages: [{ role: 'user', content: 'a' }] });
      expect((await s.getSession(id)).messages).toHaveLength(1);
      await sleep(700);
      expect(await s.getSession(id)).toEqual({ messages: [] });
    });

    it('sliding: reads refresh the TTL only when sliding is true (default off)', async () => {
      const sliding = make({ ttl: 0.6, sliding: true });
      const fixed = make({ ttl: 0.6 });
      const a = newSessionId();
      const c = newSessionId();
      await sliding.saveSession(a, { messages: [{ role: 'user', content: 'a' }] });
      await fixed.saveSession(c, { messages: [{ role: 'user', content: 'c' }] });
      for (let i = 0; i < 4; i++) {
        await sleep(300);
        await sliding.getSession(a);
        await fixed.getSession(c);
      }
      expect((await sliding.getSession(a)).messages).toHaveLength(1);
      expect(await fixed.getSession(c)).toEqual({ messages: [] });
    });

    it('appendMessage returns the new length and honours maxMessages (oldest dropped)', async () => {
      const s = make({ maxMessages: 3 });
      const id = newSessionId();
      expect(await s.appendMessage(id, { role: 'user', content: 'm1' })).toBe(1);
      expect(await s.appendMessage(id, { role: 'assistant', content: 'm2' })).toBe(2);
      expect(await s.appendMessage(id, { role: 'user', content: 'm3' })).toBe(3);
      expect(await s.appendMessage(id, { role: 'assistant', content: 'm4' })).toBe(3);
      const { messages } = await s.getSession(id);
      expect(messages.map((m) => m.content)).toEqual(['m2', 'm3', 'm4']);
    });

    it('appendMessage keeps the other fields of the session', async () => {
      const s = make();
      const id = newSessionId();
      await s.saveSession(id, { messages: [{ role: 'system', content: 's' }], user: 'u7' });
      expect(await s.appendMessage(id, { role: 'user', content: 'q' })).toBe(2);
      expect(await s.getSession(id)).toEqual({
        messages: [
          { role: 'system', content: 's' },
          { role: 'user', content: 'q' },
        ],
        user: 'u7',
      });
    });

    it('concurrent appendMessage calls from two managers lose nothing and duplicate nothing', async () => {
      const s1 = make();
      const s2 = b.redis() === undefined ? s1 : make({ prefix: s1.prefix });
      const id = newSessionId();
      const n = 60;
      const lengths = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 ? s1 : s2).appendMessage(id, { role: 'user', content: `c${i}` }),
        ),
      );
      // Every call saw a distinct length: each append landed exactly once.
      expect([...lengths].sort((x, y) => x - y)).toEqual(
        Array.from({ length: n }, (_, i) => i + 1),
      );
      const contents = (await s1.getSession(id)).messages.map((m) => m.content as string);
      expect(contents).toHaveLength(n);
      expect(new Set(contents).size).toBe(n);
    });

    it('updateSession is an atomic read-modify-write: fn(current) -> next, no lost update', async () => {
      const s1 = make();
      const s2 = b.redis() === undefined ? s1 : make({ prefix: s1.prefix, maxRetries: 100 });
      const id = newSessionId();
      await s1.saveSession(id, { messages: [], count: 0 });
      const n = 25;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 ? s1 : s2).updateSession(
            id,
            async (current) => {
              await sleep(1);
              return { ...current, count: (current.count as number) + 1 };
            },
            { maxRetries: 200 },
          ),
        ),
      );
      expect((await s1.getSession(id)).count).toBe(n);
    });

    it('updateSession on a missing session starts from { messages: [] }', async () => {
      const s = make();
      const id = newSessionId();
      let seen: unknown;
      await s.updateSession(id, (current) => {
        seen = structuredClone(current);
        return { ...current, messages: [{ role: 'user', content: 'first' }] };
      });
      expect(seen).toEqual({ messages: [] });
      expect(await s.getSession(id)).toEqual({ messages: [{ role: 'user', content: 'first' }] });
    });

    it('withSession loads, runs and saves atomically and returns the result', async () => {
      const s = make();
      const id = newSessionId();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          s.withSession(id, async (session) => {
            session.messages.push({ role: 'user', content: `w${i}` });
            return session.messages.length;
          }),
        ),
      );
      expect([...results].sort((x, y) => x - y)).toEqual(
        Array.from({ length: 10 }, (_, i) => i + 1),
      );
      expect((await s.getSession(id)).messages).toHaveLength(10);
    });

    it('bad input: typed errors, stored session unchanged', async () => {
      const s = make({ maxValueBytes: 200 });
      const id = newSessionId();
      const original = { messages: [{ role: 'user', content: 'keep' }] };
      await s.saveSession(id, original);

      for (const bad of ['', 'a\nb', 'x'.repeat(10_000)]) {
        await expect(s.getSession(bad)).rejects.toBeInstanceOf(ValidationError);
        await expect(s.saveSession(bad, original)).rejects.toBeInstanceOf(ValidationError);
        await expect(s.appendMessage(bad, { role: 'user' })).rejects.toBeInstanceOf(
          ValidationError,
        );
      }
      // Non-JSON data.
      await expect(
        s.saveSession(id, { messages: [], n: 1n } as unknown as { messages: [] }),
      ).rejects.toBeInstanceOf(AzscaleError);
      await expect(
        s.saveSession(id, { messages: [], f: () => 1 } as unknown as { messages: [] }),
      ).rejects.toBeInstanceOf(SerializationError);
      const cyclic: Record<string, unknown> = { messages: [] };
      cyclic.self = cyclic;
      await expect(s.saveSession(id, cyclic as { messages: [] })).rejects.toBeInstanceOf(
        SerializationError,
      );
      // Over maxValueBytes.
      await expect(
        s.saveSession(id, { messages: [{ role: 'user', content: 'x'.repeat(500) }] }),
      ).rejects.toBeInstanceOf(ValueTooLargeError);
      await expect(
        s.appendMessage(id, { role: 'user', content: 'x'.repeat(500) }),
      ).rejects.toBeInstanceOf(ValueTooLargeError);
      // fn that throws.
      const boom = new Error('boom');
      const err = await s
        .updateSession(id, () => {
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AzscaleError);
      expect((err as Error).cause).toBe(boom);
      // fn returning something that is not a JSON object.
      await expect(
        s.updateSession(id, () => 42 as unknown as { messages: [] }),
      ).rejects.toBeInstanceOf(AzscaleError);

      expect(await s.getSession(id)).toEqual(original);
    });

    it('close() then calls fail', async () => {
      const s = make();
      await s.close();
      await expect(s.getSession(newSessionId())).rejects.toBeInstanceOf(AzscaleError);
    });

    if (b.redis() !== undefined) {
      it("stored format is the seed's: JSON of data at prefix + id, with the TTL", async () => {
        const s = make({ ttl: 120 });
        const id = newSessionId();
        const data = { messages: [{ role: 'user', content: 'héllo' }], meta: { a: 1 } };
        await s.saveSession(id, data);
        const r = raw as Raw;
        const text = await r.get(s.prefix + id);
        expect(JSON.parse(text as string)).toEqual(data);
        const ttl = await r.ttl(s.prefix + id);
        expect(ttl).toBeGreaterThan(100);
        expect(ttl).toBeLessThanOrEqual(120);
        await s.appendMessage(id, { role: 'assistant', content: 'ok' });
        expect(JSON.parse((await r.get(s.prefix + id)) as string)).toEqual({
          ...data,
          messages: [...data.messages, { role: 'assistant', content: 'ok' }],
        });
      });

      it('default prefix "session:" and default ttl 3600 on the server', async () => {
        const redis = b.redis();
        const s = new DistributedSessionManager({ redis: redis as string });
        open.push(s);
        const id = `i3-${newSessionId()}`;
        await s.saveSession(id, { messages: [{ role: 'user', content: 'd' }] });
        const r = raw as Raw;
        try {
          expect(JSON.parse((await r.get(`session:${id}`)) as string)).toEqual({
            messages: [{ role: 'user', content: 'd' }],
          });
          const ttl = await r.ttl(`session:${id}`);
          expect(ttl).toBeGreaterThan(3590);
          expect(ttl).toBeLessThanOrEqual(3600);
        } finally {
          await r.del(`session:${id}`);
        }
      });

      it('reads a session a seed-style (Python) writer stored, and catches its writes as conflicts', async () => {
        const s = make();
        const r = raw as Raw;
        const id = newSessionId();
        const key = s.prefix + id;
        // The seed: redis.setex(f"session:{id}", ttl, json.dumps(data)).
        await r.setex(key, 3600, JSON.stringify({ messages: [{ role: 'user', content: 'py' }] }));
        expect(await s.getSession(id)).toEqual({ messages: [{ role: 'user', content: 'py' }] });
        expect(await s.appendMessage(id, { role: 'assistant', content: 'ts' })).toBe(2);

        // A foreign writer (no version of ours) changes the session between our read and write.
        let calls = 0;
        await s.updateSession(id, async (current) => {
          calls++;
          if (calls === 1) {
            await r.setex(
              key,
              3600,
              JSON.stringify({
                messages: [...current.messages, { role: 'user', content: 'foreign' }],
              }),
            );
          }
          return { ...current, messages: [...current.messages, { role: 'user', content: 'mine' }] };
        });
        expect(calls).toBeGreaterThanOrEqual(2);
        const contents = (await s.getSession(id)).messages.map((m) => m.content);
        expect(contents).toEqual(['py', 'ts', 'foreign', 'mine']);
        expect(await r.ttl(key)).toBeGreaterThan(3500);
      });

      it('accepts an ioredis client and does not close it', async () => {
        const client = b.raw() as Raw;
        try {
          const s = new DistributedSessionManager({ redis: client, prefix: uniquePrefix('i3') });
          const id = newSessionId();
          expect(await s.appendMessage(id, { role: 'user', content: 'c' })).toBe(1);
          await s.close();
          expect(await client.get(`${s.prefix}${id}`)).not.toBeNull();
        } finally {
          client.disconnect();
        }
      });
    }
  });
}

describe('session API contract: Redis down', () => {
  it('fails fast with BackendUnavailableError', async () => {
    const s = new DistributedSessionManager({ redis: 'redis://127.0.0.1:1', ttl: 60 });
    try {
      const t0 = Date.now();
      await expect(s.getSession(newSessionId())).rejects.toBeInstanceOf(BackendUnavailableError);
      await expect(s.saveSession(newSessionId(), { messages: [] })).rejects.toBeInstanceOf(
        BackendUnavailableError,
      );
      await expect(
        s.appendMessage(newSessionId(), { role: 'user', content: 'x' }),
      ).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(Date.now() - t0).toBeLessThan(6000);
    } finally {
      await s.close();
    }
  });
});
