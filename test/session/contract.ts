/**
 * The SessionStore contract, proved through the public DistributedSessionManager API and through
 * the store directly. Run against every backend by contract.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CallbackError,
  ClosedError,
  ConflictError,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
  isCallbackError,
  isConflictError,
} from '../../src/core/errors.js';
import type {
  DistributedSessionManager,
  DistributedSessionManagerOptions,
  SessionData,
} from '../../src/session/index.js';

/** How the suite gets a manager for one backend (a fresh key prefix per call). */
export interface ContractBackend {
  name: string;
  make(options?: DistributedSessionManagerOptions): DistributedSessionManager;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function sessionContract(backend: ContractBackend): void {
  describe(`SessionStore contract: ${backend.name}`, () => {
    const open: DistributedSessionManager[] = [];
    const make = (o: DistributedSessionManagerOptions = {}) => {
      const m = backend.make(o);
      open.push(m);
      return m;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((m) => m.close()));
    });

    it('returns { messages: [] } for a session that does not exist', async () => {
      const s = make();
      expect(await s.getSession('nobody')).toEqual({ messages: [] });
      expect(await s.remainingTtl('nobody')).toBeNull();
    });

    it('saves the JSON of data at prefix+id with the TTL and reads it back', async () => {
      const s = make({ ttl: 120 });
      const data = { messages: [{ role: 'user', content: 'hi' }], user: { name: 'Ada', n: 1.5 } };
      await s.saveSession('a1', data);
      expect(await s.getSession('a1')).toEqual(data);
      expect(await s.store.get(`${s.prefix}a1`)).toBe(JSON.stringify(data));
      const left = await s.remainingTtl('a1');
      expect(left).toBeGreaterThan(118);
      expect(left).toBeLessThanOrEqual(120);
    });

    it('a stored object without messages gets an empty history on read', async () => {
      const s = make();
      await s.store.set(`${s.prefix}legacy`, '{"user": "x"}', 60_000);
      expect(await s.getSession('legacy')).toEqual({ user: 'x', messages: [] });
    });

    it('deleteSession and extendSession report whether the session existed', async () => {
      const s = make({ ttl: 30 });
      expect(await s.deleteSession('d1')).toBe(false);
      expect(await s.extendSession('d1')).toBe(false);
      await s.store.set(`${s.prefix}d1`, '{"messages":[]}', 5_000);
      expect(await s.remainingTtl('d1')).toBeLessThanOrEqual(5);
      expect(await s.extendSession('d1')).toBe(true);
      expect(await s.remainingTtl('d1')).toBeGreaterThan(28);
      expect(await s.deleteSession('d1')).toBe(true);
      expect(await s.getSession('d1')).toEqual({ messages: [] });
    });

    it('sessions expire after ttl seconds', async () => {
      const s = make({ ttl: 0.3 });
      await s.saveSession('e1', { messages: [{ role: 'user', content: 'x' }] });
      expect((await s.getSession('e1')).messages).toHaveLength(1);
      await sleep(450);
      expect(await s.getSession('e1')).toEqual({ messages: [] });
    });

    it('reads refresh the TTL only with sliding: true', async () => {
      const fixed = make({ ttl: 60 });
      await fixed.store.set(`${fixed.prefix}s1`, '{"messages":[]}', 5_000);
      await fixed.getSession('s1');
      expect(await fixed.remainingTtl('s1')).toBeLessThanOrEqual(5);

      const sliding = make({ ttl: 60, sliding: true });
      await sliding.store.set(`${sliding.prefix}s1`, '{"messages":[]}', 5_000);
      expect(await sliding.remainingTtl('s1')).toBeLessThanOrEqual(5);
      await sliding.getSession('s1');
      expect(await sliding.remainingTtl('s1')).toBeGreaterThan(58);
    });

    it('appendMessage creates the session, returns the new length, resets the TTL', async () => {
      const s = make({ ttl: 50 });
      expect(await s.appendMessage('ap', { role: 'user', content: 'one' })).toBe(1);
      expect(await s.appendMessage('ap', { role: 'assistant', content: 'two' })).toBe(2);
      expect(await s.getSession('ap')).toEqual({
        messages: [
          { role: 'user', content: 'one' },
          { role: 'assistant', content: 'two' },
        ],
      });
      expect(await s.remainingTtl('ap')).toBeGreaterThan(48);
    });

    it('appendMessage keeps every other field exactly (empty arrays, numbers, unicode)', async () => {
      const s = make();
      const data = {
        user: {
          tags: [],
          empty: {},
          pi: Math.PI,
          big: Number.MAX_SAFE_INTEGER,
          e: 1e-7,
          f: 0.1 + 0.2,
        },
        title: 'caf\u00e9 \u{1F600} "quoted" [x] {y} \\ /',
        nil: null,
        messages: [{ role: 'user', content: ['a', [], { b: [1, 2, { c: ']' }] }] }],
      };
      await s.saveSession('fi', data);
      await s.appendMessage('fi', { role: 'assistant', content: 'ok', extra: [] });
      expect(await s.getSession('fi')).toEqual({
        ...data,
        messages: [...data.messages, { role: 'assistant', content: 'ok', extra: [] }],
      });
    });

    it('appendMessage splices into JSON laid out by other writers (Python json.dumps style)', async () => {
      const s = make();
      const cases: [string, unknown[]][] = [
        [
          '{"messages": [{"role": "user", "content": "hi \\"there\\" ] }"}], "n": 1}',
          [{ role: 'user', content: 'hi "there" ] }' }],
        ],
        ['{ "n" : [1, 2] , "messages" : [ ] }', []],
        ['  {"a": {"messages": [9]}, "z": "\\\\"}  ', []],
        ['{}', []],
        [
          '{"messages": [[1, [2]], "s", 3, true, null, {"k": {}}],"t":"x"}',
          [[1, [2]], 's', 3, true, null, { k: {} }],
        ],
        ['{"messages": [1], "messages": [2, 3]}', [2, 3]],
        ['{"\\u00e9\\"k": "v\\\\", "messages":\n[\n{"c": "\\u2028"}\n]\n}', [{ c: '\u2028' }]],
      ];
      for (const [i, [text, before]] of cases.entries()) {
        const key = `${s.prefix}py${i}`;
        await s.store.set(key, text, 60_000);
        const expected = { ...(JSON.parse(text) as object), messages: [...before, { i }] };
        expect(await s.appendMessage(`py${i}`, { i })).toBe(before.length + 1);
        const stored = (await s.store.get(key)) as string;
        expect(JSON.parse(stored), `case ${i}: ${text} -> ${stored}`).toEqual(expected);
      }
    });

    it('appendMessage honours maxMessages, dropping the oldest first', async () => {
      const s = make({ maxMessages: 3 });
      for (let i = 1; i <= 5; i++) {
        expect(await s.appendMessage('cap', { role: 'user', content: String(i) })).toBe(
          Math.min(i, 3),
        );
      }
      expect((await s.getSession('cap')).messages.map((m) => m.content)).toEqual(['3', '4', '5']);
      const one = make({ maxMessages: 1 });
      await one.store.set(
        `${one.prefix}cap`,
        (await s.store.get(`${s.prefix}cap`)) as string,
        60_000,
      );
      expect(await one.appendMessage('cap', { content: '6' })).toBe(1);
      expect((await one.getSession('cap')).messages).toEqual([{ content: '6' }]);
    });

    it('appendMessages appends a batch in order, atomically, honouring maxMessages', async () => {
      const s = make({ maxMessages: 4 });
      expect(await s.appendMessages('b1', [{ content: '1' }, { content: '2' }])).toBe(2);
      expect(await s.appendMessages('b1', [{ content: '3' }])).toBe(3);
      expect(await s.appendMessages('b1', [{ content: '4' }, { content: '5' }])).toBe(4);
      expect((await s.getSession('b1')).messages.map((m) => m.content)).toEqual([
        '2',
        '3',
        '4',
        '5',
      ]);
      // A batch longer than the cap keeps its own last entries.
      expect(
        await s.appendMessages(
          'b1',
          ['a', 'b', 'c', 'd', 'e', 'f'].map((content) => ({ content })),
        ),
      ).toBe(4);
      expect((await s.getSession('b1')).messages.map((m) => m.content)).toEqual([
        'c',
        'd',
        'e',
        'f',
      ]);
      const before = await s.store.get(`${s.prefix}b1`);
      for (const bad of [[], 'x', null, [{ content: 'ok' }, undefined]]) {
        await expect(s.appendMessages('b1', bad as never)).rejects.toBeInstanceOf(ValidationError);
      }
      await expect(s.appendMessages('b1', [{ n: 1n }])).rejects.toBeInstanceOf(SerializationError);
      expect(await s.store.get(`${s.prefix}b1`)).toBe(before);
    });

    it('concurrent appendMessages batches stay whole and adjacent', async () => {
      const s = make();
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          s.appendMessages('b2', [
            { role: 'user', content: `q${i}` },
            { role: 'assistant', content: `a${i}` },
          ]),
        ),
      );
      const contents = (await s.getSession('b2')).messages.map((m) => m.content as string);
      expect(contents).toHaveLength(60);
      for (let j = 0; j < 60; j += 2) {
        expect(contents[j + 1], contents.join(' ')).toBe(`a${(contents[j] as string).slice(1)}`);
      }
      expect(new Set(contents).size).toBe(60);
    });

    it('maxMessages also caps saveSession and updateSession', async () => {
      const s = make({ maxMessages: 2 });
      const msgs = [1, 2, 3, 4].map((n) => ({ role: 'user', content: String(n) }));
      const data = { messages: msgs };
      await s.saveSession('cs', data);
      expect(data.messages).toHaveLength(4); // the caller's object is not mutated
      expect((await s.getSession('cs')).messages.map((m) => m.content)).toEqual(['3', '4']);
      const written = await s.updateSession('cs', (cur) => ({
        ...cur,
        messages: [...cur.messages, { role: 'user', content: '5' }],
      }));
      expect(written.messages.map((m) => m.content)).toEqual(['4', '5']);
    });

    it('appendMessage refuses a stored value that is not a session, leaving it unchanged', async () => {
      const s = make();
      for (const text of [
        'not json',
        '[1,2]',
        '"str"',
        '{"messages": {"a": 1}}',
        '{"messages": null}',
      ]) {
        const key = `${s.prefix}bad`;
        await s.store.set(key, text, 60_000);
        await expect(s.appendMessage('bad', { content: 'x' }), text).rejects.toBeInstanceOf(
          SerializationError,
        );
        expect(await s.store.get(key)).toBe(text);
      }
    });

    it('appendMessage over maxValueBytes fails with ValueTooLargeError, nothing written', async () => {
      const s = make({ maxValueBytes: 200 });
      await s.appendMessage('big', { content: 'x'.repeat(100) });
      const before = await s.store.get(`${s.prefix}big`);
      const err = await s.appendMessage('big', { content: 'y'.repeat(100) }).catch((e) => e);
      expect(err).toBeInstanceOf(ValueTooLargeError);
      expect(err.maxBytes).toBe(200);
      expect(err.bytes).toBeGreaterThan(200);
      expect(await s.store.get(`${s.prefix}big`)).toBe(before);
      // With a cap that drops the old message the result fits again.
      const capped = make({ maxValueBytes: 200, maxMessages: 1 });
      await capped.store.set(`${capped.prefix}big`, before as string, 60_000);
      expect(await capped.appendMessage('big', { content: 'y'.repeat(100) })).toBe(1);
      expect((await capped.getSession('big')).messages).toEqual([{ content: 'y'.repeat(100) }]);
    });

    it('updateSession writes fn(current); undefined keeps the mutated copy', async () => {
      const s = make();
      const first = await s.updateSession('u1', (cur) => {
        expect(cur).toEqual({ messages: [] });
        return { ...cur, count: 1 };
      });
      expect(first).toEqual({ messages: [], count: 1 });
      await s.updateSession('u1', (cur) => {
        cur.count = (cur.count as number) + 1;
        cur.messages.push({ role: 'user', content: 'm' });
        return undefined;
      });
      expect(await s.getSession('u1')).toEqual({
        messages: [{ role: 'user', content: 'm' }],
        count: 2,
      });
    });

    it('concurrent updateSession calls lose no update', async () => {
      const s = make({ maxRetries: 200 });
      const n = 20;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          s.updateSession('cc', async (cur) => {
            await sleep(Math.random() * 3);
            cur.messages.push({ role: 'user', content: String(i) });
            cur.count = ((cur.count as number | undefined) ?? 0) + 1;
            return cur;
          }),
        ),
      );
      const final = await s.getSession('cc');
      expect(final.count).toBe(n);
      expect(new Set(final.messages.map((m) => m.content)).size).toBe(n);
    });

    it('updateSession detects a write by another writer of the key and re-runs fn', async () => {
      const s = make();
      const key = `${s.prefix}ext`;
      await s.saveSession('ext', { messages: [{ content: 'a' }] });
      let calls = 0;
      const seen: number[] = [];
      s.on('conflict', (c) => seen.push(c.attempt));
      const out = await s.updateSession('ext', async (cur) => {
        calls++;
        if (calls === 1) {
          // Another writer (SETEX of the seed's layout) lands between our read and our write.
          await s.store.set(
            key,
            '{"messages": [{"content": "a"}, {"content": "foreign"}]}',
            60_000,
          );
        }
        cur.messages.push({ content: 'ours' });
        return cur;
      });
      expect(calls).toBe(2);
      expect(seen).toEqual([1]);
      expect(out.messages.map((m) => m.content)).toEqual(['a', 'foreign', 'ours']);
      expect(await s.getSession('ext')).toEqual(out);
    });

    it('conflict detection also holds for large sessions (over 16 KiB)', async () => {
      const s = make();
      const big = 'x'.repeat(40_000);
      await s.saveSession('lg', { messages: [{ content: big }] });
      let calls = 0;
      const out = await s.updateSession('lg', async (cur) => {
        if (++calls === 1) {
          // Same length, one character different: only a real comparison notices.
          await s.store.set(
            `${s.prefix}lg`,
            JSON.stringify({ messages: [{ content: `y${big.slice(1)}` }] }),
            60_000,
          );
        }
        cur.messages.push({ content: 'ours' });
        return cur;
      });
      expect(calls).toBe(2);
      expect(String(out.messages[0]?.content).startsWith('y')).toBe(true);
      let n = 0;
      for (let i = 0; i < 3; i++) {
        n = await s.appendMessage('lg', { content: big.slice(0, 100) });
      }
      expect(n).toBe(5);
    });

    it('updateSession detects a delete and a create between read and write', async () => {
      const s = make();
      let calls = 0;
      await s.updateSession('cr', async (cur) => {
        if (++calls === 1) await s.saveSession('cr', { messages: [], by: 'other' });
        return { ...cur, mine: true };
      });
      expect(await s.getSession('cr')).toEqual({ messages: [], by: 'other', mine: true });
      calls = 0;
      await s.updateSession('cr', async (cur) => {
        if (++calls === 1) await s.deleteSession('cr');
        return { ...cur, again: calls };
      });
      expect(await s.getSession('cr')).toEqual({ messages: [], again: 2 });
    });

    it('updateSession gives up with ConflictError after maxRetries, nothing of its own written', async () => {
      const s = make({ maxRetries: 2 });
      await s.saveSession('lose', { messages: [], v: 0 });
      const events: { attempt: number; willRetry: boolean }[] = [];
      const dispose = s.on('conflict', ({ attempt, willRetry }) =>
        events.push({ attempt, willRetry }),
      );
      let calls = 0;
      const err = await s
        .updateSession('lose', async (cur) => {
          calls++;
          await s.saveSession('lose', { messages: [], v: calls * 100 });
          return { ...cur, v: -1 };
        })
        .catch((e) => e);
      expect(err).toBeInstanceOf(ConflictError);
      expect(isConflictError(err)).toBe(true);
      expect(err.context).toMatchObject({ attempts: 3 });
      expect(calls).toBe(3);
      expect(events).toEqual([
        { attempt: 1, willRetry: true },
        { attempt: 2, willRetry: true },
        { attempt: 3, willRetry: false },
      ]);
      dispose();
      expect((await s.getSession('lose')).v).toBe(300);
      // Per-call override.
      calls = 0;
      await expect(
        s.updateSession(
          'lose',
          async (cur) => {
            if (++calls === 1) await s.saveSession('lose', { messages: [], v: 1 });
            return cur;
          },
          { maxRetries: 0 },
        ),
      ).rejects.toBeInstanceOf(ConflictError);
    });

    it('a throwing fn gives CallbackError with the cause, session unchanged', async () => {
      const s = make();
      await s.saveSession('th', { messages: [{ content: 'keep' }] });
      const boom = new Error('boom');
      const err = await s
        .updateSession('th', (cur) => {
          cur.messages.push({ content: 'lost' });
          throw boom;
        })
        .catch((e) => e);
      expect(err).toBeInstanceOf(CallbackError);
      expect(isCallbackError(err)).toBe(true);
      expect(err.cause).toBe(boom);
      expect(await s.getSession('th')).toEqual({ messages: [{ content: 'keep' }] });
      await expect(
        s.withSession('th', async () => Promise.reject(new Error('x'))),
      ).rejects.toBeInstanceOf(CallbackError);
    });

    it('updateSession refuses results that cannot be stored, session unchanged', async () => {
      const s = make({ maxValueBytes: 300 });
      await s.saveSession('rv', { messages: [] });
      const before = await s.store.get(`${s.prefix}rv`);
      await expect(
        s.updateSession('rv', () => [] as unknown as SessionData),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(
        s.updateSession('rv', (c) => ({ ...c, n: 10n as unknown as number })),
      ).rejects.toBeInstanceOf(SerializationError);
      await expect(
        s.updateSession('rv', (c) => ({ ...c, big: 'z'.repeat(400) })),
      ).rejects.toBeInstanceOf(ValueTooLargeError);
      expect(await s.store.get(`${s.prefix}rv`)).toBe(before);
    });

    it('withSession runs fn on the loaded session, saves its changes, returns its result', async () => {
      const s = make();
      await s.appendMessage('ws', { role: 'user', content: 'q' });
      const n = await s.withSession('ws', async (session) => {
        session.messages.push({ role: 'assistant', content: 'a' });
        session.turns = 1;
        return session.messages.length;
      });
      expect(n).toBe(2);
      expect(await s.getSession('ws')).toEqual({
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a' },
        ],
        turns: 1,
      });
    });

    it('getSession of a stored value that is not a JSON object throws SerializationError', async () => {
      const s = make();
      await s.store.set(`${s.prefix}nj`, '{oops', 60_000);
      await expect(s.getSession('nj')).rejects.toBeInstanceOf(SerializationError);
      await s.store.set(`${s.prefix}nj`, '[1]', 60_000);
      await expect(s.getSession('nj')).rejects.toBeInstanceOf(SerializationError);
    });

    it('stored text with __proto__ keys does not pollute the returned object', async () => {
      const s = make();
      await s.store.set(`${s.prefix}pp`, '{"messages":[],"__proto__":{"polluted":true}}', 60_000);
      const got = await s.getSession('pp');
      expect((got as Record<string, unknown>).polluted).toBeUndefined();
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('after close every call throws ClosedError; close is idempotent', async () => {
      const s = make();
      await s.saveSession('cl', { messages: [] });
      await s.close();
      await s.close();
      await expect(s.getSession('cl')).rejects.toBeInstanceOf(ClosedError);
      await expect(s.appendMessage('cl', { content: 'x' })).rejects.toBeInstanceOf(ClosedError);
      await expect(s.updateSession('cl', (c) => c)).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
