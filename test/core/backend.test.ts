import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BackendOptions,
  type BackendSpec,
  hasMethods,
  resolveBackend,
  resolveConnectionOptions,
} from '../../src/core/backend.js';
import type { RedisConnection } from '../../src/core/connection.js';
import { ValidationError, isValidationError } from '../../src/core/errors.js';
import { servers, uniquePrefix } from '../harness/env.js';

// A minimal store family: a counter kept in memory or in Redis (a real INCR on the server).
interface CounterStore {
  incr(key: string): Promise<number>;
  close(): Promise<void>;
}
class MemoryCounter implements CounterStore {
  closed = false;
  private readonly m = new Map<string, number>();
  async incr(key: string): Promise<number> {
    const n = (this.m.get(key) ?? 0) + 1;
    this.m.set(key, n);
    return n;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}
class RedisCounter implements CounterStore {
  closed = false;
  constructor(
    readonly conn: RedisConnection,
    readonly opts: { prefix: string; owned: boolean },
  ) {}
  incr(key: string): Promise<number> {
    return this.conn.run('incr', (c) => c.incr(this.opts.prefix + key));
  }
  async close(): Promise<void> {
    this.closed = true;
    await this.conn.close();
  }
}
const spec: BackendSpec<MemoryCounter, RedisCounter, CounterStore> = {
  module: 'Counter',
  storeName: 'CounterStore',
  prefix: 'azs:counter:',
  memory: () => new MemoryCounter(),
  redis: (conn, ctx) => new RedisCounter(conn, ctx),
  validateStore: (x): x is CounterStore => hasMethods(x, ['incr', 'close']),
};
type Opts = BackendOptions<CounterStore> & { prefix?: unknown };

const clients: Redis[] = [];
afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
});

function validationOf(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (e) {
    if (isValidationError(e)) return e as ValidationError;
    throw e;
  }
  throw new Error('expected a ValidationError, nothing was thrown');
}

describe('resolveBackend', () => {
  it('is memory when neither redis nor store is given (and for redis: null), and owns it', async () => {
    for (const o of [{}, { redis: null }, { redis: undefined }] as Opts[]) {
      const b = resolveBackend(o, spec);
      expect(b.kind).toBe('memory');
      expect(b.owned).toBe(true);
      expect(b.connection).toBeUndefined();
      expect(b.prefix).toBe('azs:counter:');
      expect(await b.store.incr('a')).toBe(1);
      await b.close();
      expect((b.store as MemoryCounter).closed).toBe(true);
    }
  });

  it('builds the Redis store over a connection it creates from a URL, and closes both', async () => {
    const prefix = uniquePrefix('backend');
    const b = resolveBackend({ redis: servers().redisUrl, prefix }, spec);
    expect(b.kind).toBe('redis');
    expect(b.owned).toBe(true);
    expect(b.prefix).toBe(prefix);
    const store = b.store as RedisCounter;
    expect(store.opts).toEqual({ prefix, owned: true });
    expect(await store.incr('k')).toBe(1);
    expect(await store.incr('k')).toBe(2);
    const client = store.conn.client as Redis;
    await b.close();
    await b.close(); // idempotent
    expect(store.closed).toBe(true);
    expect(client.status).toBe('end');
    // The value really is on the server, under the prefix.
    const check = new Redis(servers().redisUrl);
    clients.push(check);
    expect(await check.get(`${prefix}k`)).toBe('2');
  });

  it('never closes a client the user passed in', async () => {
    const mine = new Redis(servers().redisUrl);
    clients.push(mine);
    const b = resolveBackend({ redis: mine, prefix: uniquePrefix('backend') }, spec);
    expect(b.kind).toBe('redis');
    expect((b.store as RedisCounter).opts.owned).toBe(false);
    expect(await b.store.incr('x')).toBe(1);
    await b.close();
    expect(mine.status).toBe('ready');
    expect(await mine.ping()).toBe('PONG');
  });

  it('uses a custom store as is, under store or its alias backend, and never closes it', async () => {
    for (const key of ['store', 'backend'] as const) {
      const mine = new MemoryCounter();
      const b = resolveBackend({ [key]: mine }, spec);
      expect(b.kind).toBe('custom');
      expect(b.owned).toBe(false);
      expect(b.store).toBe(mine);
      await b.close();
      expect(mine.closed).toBe(false);
    }
  });

  it('refuses two conflicting options with a ValidationError naming the option', () => {
    const both = validationOf(() =>
      resolveBackend({ redis: servers().redisUrl, store: new MemoryCounter() }, spec),
    );
    expect(both.option).toBe('store');
    expect(both.message).toBe('Counter: give either redis or store, not both');
    const alias = validationOf(() =>
      resolveBackend({ redis: servers().redisUrl, backend: new MemoryCounter() }, spec),
    );
    expect(alias.message).toBe('Counter: give either redis or backend, not both');
    const twoStores = validationOf(() =>
      resolveBackend({ store: new MemoryCounter(), backend: new MemoryCounter() }, spec),
    );
    expect(twoStores.option).toBe('backend');
    const twoConns = validationOf(() => resolveBackend({ connection: {}, redisOptions: {} }, spec));
    expect(twoConns.option).toBe('redisOptions');
    const twoTimeouts = validationOf(() =>
      resolveBackend({ connectTimeout: 1, connection: { connectTimeout: 2 } }, spec),
    );
    expect(twoTimeouts.option).toBe('connectTimeout');
    // A connection setting with a custom store would be dropped silently: refused instead.
    const dropped = validationOf(() =>
      resolveBackend({ store: new MemoryCounter(), connection: { commandTimeout: 1 } }, spec),
    );
    expect(dropped.option).toBe('connection');
  });

  it('refuses a wrong type for each option, naming it', () => {
    const cases: [Opts, string, RegExp][] = [
      [{ store: 42 as never }, 'store', /^Counter: store must be a CounterStore, received/],
      [{ store: {} as never }, 'store', /must be a CounterStore/],
      [{ backend: 'x' as never }, 'backend', /^Counter: backend must be a CounterStore/],
      [{ redis: 42 as never }, 'redis', /redis must be a redis:\/\/ URL/],
      [{ redis: 'http://x' as never }, 'redis', /redis:\/\/ or rediss:\/\//],
      [{ redis: { sentinels: [], name: 'm' } }, 'redis.sentinels', /at least one/],
      [{ connection: 'fast' as never }, 'connection', /^Counter: connection must be an object/],
      [
        { connection: { conectTimeout: 1 } as never },
        'connection.conectTimeout',
        /not a connection option/,
      ],
      [{ redisOptions: [] as never }, 'redisOptions', /must be an object/],
      [{ connection: { connectTimeout: Number.NaN } }, 'connectTimeout', /connectTimeout/],
      [{ commandTimeout: -1 }, 'commandTimeout', /commandTimeout/],
      [{ prefix: 5 }, 'prefix', /prefix must be a string/],
      [{ prefix: 'a\nb' }, 'prefix', /control characters/],
    ];
    for (const [o, option, re] of cases) {
      const e = validationOf(() => resolveBackend(o, spec));
      expect(e.option, JSON.stringify(option)).toBe(option);
      expect(e.message).toMatch(re);
    }
    expect(validationOf(() => resolveBackend(null as never, spec)).option).toBe('options');
  });

  it('reads own properties only: prototype names are not options', () => {
    const proto = { store: new MemoryCounter() };
    const o = Object.create(proto) as Opts;
    const b = resolveBackend(o, spec);
    expect(b.kind).toBe('memory');
    const withProtoKey = JSON.parse('{"__proto__": {"redis": "redis://x"}}') as Opts;
    expect(resolveBackend(withProtoKey, spec).kind).toBe('memory');
  });

  it('closes the lazy connection when the Redis store refuses its options', async () => {
    let seen: RedisConnection | undefined;
    const refusing: typeof spec = {
      ...spec,
      redis: (conn) => {
        seen = conn;
        throw new ValidationError('name is wrong', { option: 'name' });
      },
    };
    expect(() => resolveBackend({ redis: servers().redisUrl }, refusing)).toThrow(/name is wrong/);
    expect(seen?.isClosed).toBe(true);
  });
});

describe('resolveConnectionOptions', () => {
  it('puts the module defaults under connection, its alias and the top-level aliases', () => {
    const d = { connectTimeout: 1, commandTimeout: 1 };
    expect(resolveConnectionOptions({}, 'M', d)).toEqual(d);
    expect(resolveConnectionOptions({ connection: { commandTimeout: 3 } }, 'M', d)).toEqual({
      connectTimeout: 1,
      commandTimeout: 3,
    });
    expect(resolveConnectionOptions({ redisOptions: { connectTimeout: 2 } }, 'M', d)).toEqual({
      connectTimeout: 2,
      commandTimeout: 1,
    });
    expect(
      resolveConnectionOptions({ connectTimeout: 4, connection: { commandTimeout: 2 } }, 'M'),
    ).toEqual({ connectTimeout: 4, commandTimeout: 2 });
  });
});
