/** Bad input: each a typed error naming the option, and the stored session left unchanged. */
import { afterAll, describe, expect, it } from 'vitest';
import {
  SerializationError,
  ValidationError,
  ValueTooLargeError,
  isValidationError,
} from '../../src/core/errors.js';
import {
  DistributedSessionManager,
  type DistributedSessionManagerOptions,
  type SessionData,
  newSessionId,
} from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

async function optionError(options: unknown): Promise<ValidationError> {
  try {
    const m = new DistributedSessionManager(options as DistributedSessionManagerOptions);
    await m.close();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    return e as ValidationError;
  }
  throw new Error(`no error for ${JSON.stringify(options)}`);
}

describe('constructor options', () => {
  it.each([
    [{ ttl: 0 }, 'ttl'],
    [{ ttl: -5 }, 'ttl'],
    [{ ttl: '60' }, 'ttl'],
    [{ ttl: Number.NaN }, 'ttl'],
    [{ prefix: 42 }, 'prefix'],
    [{ prefix: 'a\nb' }, 'prefix'],
    [{ maxMessages: 0 }, 'maxMessages'],
    [{ maxMessages: 2.5 }, 'maxMessages'],
    [{ maxValueBytes: 0 }, 'maxValueBytes'],
    [{ sliding: 'yes' }, 'sliding'],
    [{ maxRetries: -1 }, 'maxRetries'],
    [{ redis: 'http://localhost:6379' }, 'redis'],
    [{ redis: 42 }, 'redis'],
    [{ redis: { nodes: [] } }, 'redis.nodes'],
    [{ redis: 'redis://localhost:6379', store: {} }, 'store'],
    [{ store: { get() {} } }, 'store.set'],
    [{ connectTimeout: 0, redis: 'redis://localhost:1' }, 'connectTimeout'],
  ])('%j -> ValidationError naming %s', async (options, option) => {
    const e = await optionError(options);
    expect(e.option?.startsWith(option)).toBe(true);
    expect(e.message).toContain(option);
  });

  it('rejects a non-object options argument', async () => {
    expect((await optionError('redis://x')).option).toBe('options');
  });

  it('defaults are the seed values', async () => {
    const m = new DistributedSessionManager();
    expect({ ttl: m.ttl, prefix: m.prefix, sliding: m.sliding, max: m.maxMessages }).toEqual({
      ttl: 3600,
      prefix: 'session:',
      sliding: false,
      max: undefined,
    });
    expect(m.maxValueBytes).toBe(1024 * 1024);
    await m.close();
  });
});

describe('newSessionId', () => {
  it('is URL-safe with 128 bits of randomness, and unique', () => {
    const ids = new Set(Array.from({ length: 2000 }, () => newSessionId()));
    expect(ids.size).toBe(2000);
    for (const id of [...ids].slice(0, 50)) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
      expect(encodeURIComponent(id)).toBe(id);
    }
    const m = new DistributedSessionManager();
    expect(m.newSessionId()).toMatch(/^[A-Za-z0-9_-]{22}$/);
    void m.close();
  });
});

const backends = [
  { name: 'memory', redis: () => undefined },
  { name: 'redis standalone', redis: () => servers().redisUrl },
];

describe.each(backends)('bad input on $name', ({ redis }) => {
  const sessions = () =>
    new DistributedSessionManager({
      redis: redis(),
      prefix: uniquePrefix('sessval'),
      maxValueBytes: 512,
    });
  let s: DistributedSessionManager;
  const seed: SessionData = { messages: [{ role: 'user', content: 'keep me' }] };
  const stored = () => s.store.get(`${s.prefix}v`);

  afterAll(() => s?.close());

  it('invalid ids are ValidationErrors naming id, for every method', async () => {
    s = sessions();
    await s.saveSession('v', seed);
    const bad: unknown[] = ['', 42, null, undefined, 'a\nb', 'x'.repeat(513), { id: 1 }];
    for (const id of bad) {
      const calls = [
        () => s.getSession(id as string),
        () => s.saveSession(id as string, seed),
        () => s.deleteSession(id as string),
        () => s.extendSession(id as string),
        () => s.updateSession(id as string, (c) => c),
        () => s.appendMessage(id as string, { content: 'x' }),
        () => s.withSession(id as string, () => 1),
      ];
      for (const call of calls) {
        const e = await call().catch((err) => err);
        expect(e, String(id)).toBeInstanceOf(ValidationError);
        expect(e.option).toBe('id');
      }
    }
    expect(await stored()).toBe(JSON.stringify(seed));
  });

  it('data that is not a JSON object: ValidationError or SerializationError, nothing written', async () => {
    const before = await stored();
    const cyclic: Record<string, unknown> = { messages: [] };
    cyclic.self = cyclic;
    const cases: [unknown, typeof ValidationError | typeof SerializationError][] = [
      [null, ValidationError],
      ['{"messages":[]}', ValidationError],
      [[{ role: 'user' }], ValidationError],
      [{ messages: [], n: 10n }, SerializationError],
      [cyclic, SerializationError],
      [{ messages: [], f: () => 1 }, SerializationError],
      [{ messages: [{ content: Symbol('s') }] }, SerializationError],
    ];
    for (const [data, kind] of cases) {
      await expect(s.saveSession('v', data as SessionData)).rejects.toBeInstanceOf(kind);
      await expect(s.updateSession('v', () => data as SessionData)).rejects.toBeInstanceOf(kind);
    }
    expect(await stored()).toBe(before);
  });

  it('messages that are not JSON, undefined or too large are refused, nothing written', async () => {
    const before = await stored();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(s.appendMessage('v', undefined as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(s.appendMessage('v', cyclic)).rejects.toBeInstanceOf(SerializationError);
    await expect(s.appendMessage('v', { n: 1n })).rejects.toBeInstanceOf(SerializationError);
    await expect(s.appendMessage('v', { content: 'z'.repeat(600) })).rejects.toBeInstanceOf(
      ValueTooLargeError,
    );
    expect(await stored()).toBe(before);
  });

  it('a value over maxValueBytes is a ValueTooLargeError naming the limit, nothing written', async () => {
    const before = await stored();
    const e = await s
      .saveSession('v', { messages: [{ content: 'é'.repeat(300) }] })
      .catch((err) => err);
    expect(e).toBeInstanceOf(ValueTooLargeError);
    expect(e.option).toBe('maxValueBytes');
    expect(e.bytes).toBeGreaterThan(600); // UTF-8 bytes, not characters
    expect(e.maxBytes).toBe(512);
    expect(await stored()).toBe(before);
  });

  it('updateSession and withSession need a function', async () => {
    for (const fn of [undefined, 'fn', {}]) {
      const e = await s.updateSession('v', fn as never).catch((err) => err);
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.option).toBe('fn');
      await expect(s.withSession('v', fn as never)).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(s.updateSession('v', (c) => c, { maxRetries: -1 })).rejects.toBeInstanceOf(
      ValidationError,
    );
  });
});
