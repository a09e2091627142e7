/** Updates, conflicts and failure cases of the {@link SessionStore} contract, through the manager. */
import {
  CallbackError,
  ClosedError,
  ConflictError,
  SerializationError,
  ValidationError,
  ValueTooLargeError,
  isCallbackError,
  isConflictError,
} from '../core/errors.js';
import type { SessionData } from '../session/index.js';
import type { SessionContext } from './session-context.js';
import { sleep } from './util.js';

/** @internal Registers the update, conflict and close cases. */
export function sessionUpdateCases({ it, expect, make }: SessionContext): void {
  it('updateSession writes fn(current); undefined keeps the mutated copy', async () => {
    const s = await make();
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
    const s = await make({ maxRetries: 200 });
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
    const s = await make();
    const key = `${s.prefix}ext`;
    await s.saveSession('ext', { messages: [{ content: 'a' }] });
    let calls = 0;
    const seen: number[] = [];
    s.on('conflict', (c) => seen.push(c.attempt));
    const out = await s.updateSession('ext', async (cur) => {
      calls++;
      if (calls === 1) {
        // Another writer (SETEX of the seed's layout) lands between our read and our write.
        await s.store.set(key, '{"messages": [{"content": "a"}, {"content": "foreign"}]}', 60_000);
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
    const s = await make();
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
    const s = await make();
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
    const s = await make({ maxRetries: 2 });
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
    const s = await make();
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
    const s = await make({ maxValueBytes: 300 });
    await s.saveSession('rv', { messages: [] });
    const before = await s.store.get(`${s.prefix}rv`);
    await expect(s.updateSession('rv', () => [] as unknown as SessionData)).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(
      s.updateSession('rv', (c) => ({ ...c, n: 10n as unknown as number })),
    ).rejects.toBeInstanceOf(SerializationError);
    await expect(
      s.updateSession('rv', (c) => ({ ...c, big: 'z'.repeat(400) })),
    ).rejects.toBeInstanceOf(ValueTooLargeError);
    expect(await s.store.get(`${s.prefix}rv`)).toBe(before);
  });

  it('withSession runs fn on the loaded session, saves its changes, returns its result', async () => {
    const s = await make();
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
    const s = await make();
    await s.store.set(`${s.prefix}nj`, '{oops', 60_000);
    await expect(s.getSession('nj')).rejects.toBeInstanceOf(SerializationError);
    await s.store.set(`${s.prefix}nj`, '[1]', 60_000);
    await expect(s.getSession('nj')).rejects.toBeInstanceOf(SerializationError);
  });

  it('stored text with __proto__ keys does not pollute the returned object', async () => {
    const s = await make();
    await s.store.set(`${s.prefix}pp`, '{"messages":[],"__proto__":{"polluted":true}}', 60_000);
    const got = await s.getSession('pp');
    expect((got as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('after close every call throws ClosedError; close is idempotent', async () => {
    const s = await make();
    await s.saveSession('cl', { messages: [] });
    await s.close();
    await s.close();
    await expect(s.getSession('cl')).rejects.toBeInstanceOf(ClosedError);
    await expect(s.appendMessage('cl', { content: 'x' })).rejects.toBeInstanceOf(ClosedError);
    await expect(s.updateSession('cl', (c) => c)).rejects.toBeInstanceOf(ClosedError);
  });
}
