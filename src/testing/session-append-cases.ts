/** Reads, expiry and appends of the {@link SessionStore} contract, through the manager. */
import { SerializationError, ValidationError, ValueTooLargeError } from '../core/errors.js';
import type { SessionContext } from './session-context.js';
import { waitFor } from './util.js';

/** @internal Registers the read, expiry and append cases. */
export function sessionAppendCases({ it, expect, make }: SessionContext): void {
  it('returns { messages: [] } for a session that does not exist', async () => {
    const s = await make();
    expect(await s.getSession('nobody')).toEqual({ messages: [] });
    expect(await s.remainingTtl('nobody')).toBeNull();
  });

  it('saves the JSON of data at prefix+id with the TTL and reads it back', async () => {
    const s = await make({ ttl: 120 });
    const data = { messages: [{ role: 'user', content: 'hi' }], user: { name: 'Ada', n: 1.5 } };
    await s.saveSession('a1', data);
    expect(await s.getSession('a1')).toEqual(data);
    expect(await s.store.get(`${s.prefix}a1`)).toBe(JSON.stringify(data));
    const left = await s.remainingTtl('a1');
    expect(left).toBeGreaterThan(118);
    expect(left).toBeLessThanOrEqual(120);
  });

  it('a stored object without messages gets an empty history on read', async () => {
    const s = await make();
    await s.store.set(`${s.prefix}legacy`, '{"user": "x"}', 60_000);
    expect(await s.getSession('legacy')).toEqual({ user: 'x', messages: [] });
  });

  it('deleteSession and extendSession report whether the session existed', async () => {
    const s = await make({ ttl: 30 });
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
    const s = await make({ ttl: 0.5 });
    await s.saveSession('e1', { messages: [{ role: 'user', content: 'x' }] });
    expect((await s.getSession('e1')).messages).toHaveLength(1);
    await waitFor(async () => (await s.getSession('e1')).messages.length === 0, 'expiry');
  });

  it('reads refresh the TTL only with sliding: true', async () => {
    const fixed = await make({ ttl: 60 });
    await fixed.store.set(`${fixed.prefix}s1`, '{"messages":[]}', 5_000);
    await fixed.getSession('s1');
    expect(await fixed.remainingTtl('s1')).toBeLessThanOrEqual(5);

    const sliding = await make({ ttl: 60, sliding: true });
    await sliding.store.set(`${sliding.prefix}s1`, '{"messages":[]}', 5_000);
    expect(await sliding.remainingTtl('s1')).toBeLessThanOrEqual(5);
    await sliding.getSession('s1');
    expect(await sliding.remainingTtl('s1')).toBeGreaterThan(58);
  });

  it('appendMessage creates the session, returns the new length, resets the TTL', async () => {
    const s = await make({ ttl: 50 });
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
    const s = await make();
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
    const s = await make();
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
    const s = await make({ maxMessages: 3 });
    for (let i = 1; i <= 5; i++) {
      expect(await s.appendMessage('cap', { role: 'user', content: String(i) })).toBe(
        Math.min(i, 3),
      );
    }
    expect((await s.getSession('cap')).messages.map((m) => m.content)).toEqual(['3', '4', '5']);
    const one = await make({ maxMessages: 1 });
    await one.store.set(
      `${one.prefix}cap`,
      (await s.store.get(`${s.prefix}cap`)) as string,
      60_000,
    );
    expect(await one.appendMessage('cap', { content: '6' })).toBe(1);
    expect((await one.getSession('cap')).messages).toEqual([{ content: '6' }]);
  });

  it('appendMessages appends a batch in order, atomically, honouring maxMessages', async () => {
    const s = await make({ maxMessages: 4 });
    expect(await s.appendMessages('b1', [{ content: '1' }, { content: '2' }])).toBe(2);
    expect(await s.appendMessages('b1', [{ content: '3' }])).toBe(3);
    expect(await s.appendMessages('b1', [{ content: '4' }, { content: '5' }])).toBe(4);
    expect((await s.getSession('b1')).messages.map((m) => m.content)).toEqual(['2', '3', '4', '5']);
    // A batch longer than the cap keeps its own last entries.
    expect(
      await s.appendMessages(
        'b1',
        ['a', 'b', 'c', 'd', 'e', 'f'].map((content) => ({ content })),
      ),
    ).toBe(4);
    expect((await s.getSession('b1')).messages.map((m) => m.content)).toEqual(['c', 'd', 'e', 'f']);
    const before = await s.store.get(`${s.prefix}b1`);
    for (const bad of [[], 'x', null, [{ content: 'ok' }, undefined]]) {
      await expect(s.appendMessages('b1', bad as never)).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(s.appendMessages('b1', [{ n: 1n }])).rejects.toBeInstanceOf(SerializationError);
    expect(await s.store.get(`${s.prefix}b1`)).toBe(before);
  });

  it('concurrent appendMessages batches stay whole and adjacent', async () => {
    const s = await make();
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
    const s = await make({ maxMessages: 2 });
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
    const s = await make();
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
    const s = await make({ maxValueBytes: 200 });
    await s.appendMessage('big', { content: 'x'.repeat(100) });
    const before = await s.store.get(`${s.prefix}big`);
    const err = await s.appendMessage('big', { content: 'y'.repeat(100) }).catch((e) => e);
    expect(err).toBeInstanceOf(ValueTooLargeError);
    expect(err.maxBytes).toBe(200);
    expect(err.bytes).toBeGreaterThan(200);
    expect(await s.store.get(`${s.prefix}big`)).toBe(before);
    // With a cap that drops the old message the result fits again.
    const capped = await make({ maxValueBytes: 200, maxMessages: 1 });
    await capped.store.set(`${capped.prefix}big`, before as string, 60_000);
    expect(await capped.appendMessage('big', { content: 'y'.repeat(100) })).toBe(1);
    expect((await capped.getSession('big')).messages).toEqual([{ content: 'y'.repeat(100) }]);
  });
}
