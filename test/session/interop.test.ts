/**
 * The seed's layout: a session written by one DistributedSessionManager is read by another
 * process, and by the seed's own Python code, and the other way round. Python's writes (which
 * bump no version of ours) are caught by updateSession's conflict check.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedSessionManager, newSessionId } from '../../src/session/index.js';
import { childEnv, servers } from '../harness/env.js';

const run = promisify(execFile);
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;

describe('seed key layout interop (standalone Redis)', () => {
  let a: DistributedSessionManager;
  let raw: Redis;
  let url: string;
  const python = (...args: string[]) =>
    execFileSync('python3', [fixture('seed_session.py'), url, ...args], { encoding: 'utf8' });

  beforeAll(() => {
    url = servers().redisUrl;
    // Default options: the seed's prefix "session:" and TTL 3600 s.
    a = new DistributedSessionManager({ redis: url });
    raw = new Redis(url);
  });
  afterAll(async () => {
    await a.close();
    raw.disconnect();
  });

  it('instance A writes, instance B in another process reads, as the JSON of data at session:{id}', async () => {
    const id = newSessionId();
    const data = { messages: [{ role: 'user', content: 'héllo "A"' }], user: 'ada', tags: [] };
    await a.saveSession(id, data);
    expect(await raw.get(`session:${id}`)).toBe(JSON.stringify(data));
    const ttl = await raw.ttl(`session:${id}`);
    expect(ttl).toBeGreaterThan(3590);
    expect(ttl).toBeLessThanOrEqual(3600);
    await a.appendMessage(id, { role: 'assistant', content: 'hi' });

    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', fixture('read-session.ts'), url, id],
      { env: childEnv(), timeout: 30_000 },
    );
    expect(JSON.parse(stdout)).toEqual({
      ...data,
      messages: [...data.messages, { role: 'assistant', content: 'hi' }],
    });
    expect(JSON.parse(stdout)).toEqual(await a.getSession(id));
  });

  it.skipIf(!hasPython)(
    'the seed Python code reads what we wrote and we read what it wrote',
    async () => {
      const id = newSessionId();
      await a.appendMessage(id, { role: 'user', content: 'from node ✓' });
      expect(JSON.parse(python('get', id))).toEqual({
        messages: [{ role: 'user', content: 'from node ✓' }],
      });

      python('chat', id, 'from python ✓');
      // json.dumps layout (", " and ": " separators, \u escapes) parses to the same session.
      expect(await raw.get(`session:${id}`)).toContain('"content": "from python \\u2713"');
      expect(await a.getSession(id)).toEqual({
        messages: [
          { role: 'user', content: 'from node ✓' },
          { role: 'user', content: 'from python ✓' },
        ],
      });

      // Our atomic append splices into Python's text; Python reads the result.
      expect(await a.appendMessage(id, { role: 'assistant', content: 'reply' })).toBe(3);
      expect(JSON.parse(python('get', id)).messages).toEqual([
        { role: 'user', content: 'from node ✓' },
        { role: 'user', content: 'from python ✓' },
        { role: 'assistant', content: 'reply' },
      ]);
    },
  );

  it.skipIf(!hasPython)(
    'a Python write between our read and write is detected and retried',
    async () => {
      const id = newSessionId();
      python('save', id, JSON.stringify({ messages: [], counter: 0 }));
      let calls = 0;
      const conflicts: number[] = [];
      const dispose = a.on('conflict', (c) => c.id === id && conflicts.push(c.attempt));
      const out = await a.updateSession(id, (s) => {
        calls++;
        // The seed's chat endpoint runs in another process while our update is in flight.
        if (calls === 1) python('chat', id, 'python was here');
        s.counter = (s.counter as number) + 1;
        s.messages.push({ role: 'assistant', content: 'node was here' });
        return s;
      });
      dispose();
      expect(calls).toBe(2);
      expect(conflicts).toEqual([1]);
      expect(out).toEqual({
        messages: [
          { role: 'user', content: 'python was here' },
          { role: 'assistant', content: 'node was here' },
        ],
        counter: 1,
      });
      expect(JSON.parse(python('get', id))).toEqual(out);
    },
  );

  it.skipIf(!hasPython)(
    'TTL semantics match the seed: every write resets it, extend refreshes it',
    async () => {
      const id = newSessionId();
      const short = new DistributedSessionManager({ redis: url, ttl: 100 });
      try {
        await short.saveSession(id, { messages: [] });
        expect(await raw.ttl(`session:${id}`)).toBeLessThanOrEqual(100);
        python('chat', id, 'x'); // SETEX 3600
        expect(await raw.ttl(`session:${id}`)).toBeGreaterThan(3590);
        await short.appendMessage(id, { content: 'y' });
        expect(await raw.ttl(`session:${id}`)).toBeLessThanOrEqual(100);
        await raw.persist(`session:${id}`);
        expect(await short.remainingTtl(id)).toBe(-1);
        expect(await short.extendSession(id)).toBe(true);
        expect(await raw.ttl(`session:${id}`)).toBeLessThanOrEqual(100);
        expect(await raw.ttl(`session:${id}`)).toBeGreaterThan(95);
      } finally {
        await short.close();
      }
    },
  );
});
