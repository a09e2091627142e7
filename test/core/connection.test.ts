import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisConnection, parseClusterNodes, resolveRedis } from '../../src/core/connection.js';
import { BackendUnavailableError, ValidationError } from '../../src/core/errors.js';
import { freePort, servers, startRedisServer } from '../harness/env.js';

const toClose: RedisConnection[] = [];
afterAll(async () => {
  await Promise.all(toClose.map((c) => c.close()));
});
function conn(...args: ConstructorParameters<typeof RedisConnection>): RedisConnection {
  const c = new RedisConnection(...args);
  toClose.push(c);
  return c;
}

function everyString(e: unknown, seen = new Set<unknown>()): string[] {
  // Every string reachable from the error: message, stack, context, cause chain, own fields.
  if (e === null || e === undefined || seen.has(e)) return [];
  if (typeof e === 'string') return [e];
  if (typeof e !== 'object') return [String(e)];
  seen.add(e);
  const out: string[] = [];
  const names = new Set([...Object.getOwnPropertyNames(e), 'message', 'stack', 'cause']);
  for (const k of names) out.push(...everyString((e as Record<string, unknown>)[k], seen));
  return out;
}

describe('RedisConnection', () => {
  it('embedded when no redis option is given', () => {
    expect(resolveRedis(undefined)).toBeUndefined();
    expect(resolveRedis(null)).toBeUndefined();
  });

  it('rejects input that is no Redis form with a ValidationError naming the option', () => {
    expect(() => resolveRedis(42 as never)).toThrow(ValidationError);
    expect(() => resolveRedis('http://x' as never)).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => resolveRedis('not a url')).toThrow(/not a valid Redis URL/);
    expect(() => resolveRedis({ nodes: [] })).toThrow(/at least one node/);
    expect(() => resolveRedis({ nodes: [{ host: 'h', port: 0 }] })).toThrow(ValidationError);
    expect(() => resolveRedis('redis://127.0.0.1:1', { connectTimeout: -1 })).toThrow(
      /connectTimeout/,
    );
  });

  it('connects to the standalone server from a URL and owns the client', async () => {
    const c = conn(servers().redisUrl);
    expect(c.owned).toBe(true);
    const client = await c.get();
    expect(await client.ping()).toBe('PONG');
    await c.close();
    expect(client.status).toBe('end');
  });

  it('never closes a client the user passed in', async () => {
    const mine = new Redis(servers().redisUrl);
    const c = conn(mine);
    expect(c.owned).toBe(false);
    expect(await (await c.get()).ping()).toBe('PONG');
    await c.close();
    expect(await mine.ping()).toBe('PONG');
    mine.disconnect();
  });

  it('connects to the Cluster from { nodes }', async () => {
    const c = conn({ nodes: servers().clusterNodes });
    expect(c.isCluster).toBe(true);
    const client = await c.get();
    await client.set('azs-conn-{a}', '1');
    expect(await client.get('azs-conn-{a}')).toBe('1');
    await client.del('azs-conn-{a}');
  });

  it('parses REDIS_CLUSTER_NODES text', () => {
    expect(parseClusterNodes('127.0.0.1:7000, 127.0.0.1:7001')).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: '127.0.0.1', port: 7001 },
    ]);
    expect(() => parseClusterNodes('x:y')).toThrow(ValidationError);
  });

  describe('requirepass', () => {
    it('the right password in the URL connects', async () => {
      const c = conn(servers().redisAuthUrl);
      expect(await (await c.get()).ping()).toBe('PONG');
    });

    it('a wrong password fails fast with BackendUnavailableError that never shows it', async () => {
      const { redisAuthUrl } = servers();
      const url = new URL(redisAuthUrl);
      const wrong = 'Wr0ng-pa55word-zz';
      url.password = wrong;
      const c = conn(url.toString(), { connectTimeout: 10 });
      const t0 = performance.now();
      const err = await c.get().then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsed = performance.now() - t0;
      expect(err).toBeInstanceOf(BackendUnavailableError);
      expect(elapsed).toBeLessThan(2000); // fails on the AUTH reply, not on the 10 s timeout
      const e = err as BackendUnavailableError;
      expect(e.context.auth).toBe(true);
      for (const s of everyString(e)) expect(s).not.toContain(wrong);
      expect(JSON.stringify(e.context)).not.toContain(wrong);
      expect(e.message).toMatch(/WRONGPASS|invalid/i);
    });

    it('no password at all fails fast too', async () => {
      const url = new URL(servers().redisAuthUrl);
      url.password = '';
      url.username = '';
      const c = conn(url.toString(), { connectTimeout: 10 });
      const t0 = performance.now();
      await expect(c.get()).rejects.toBeInstanceOf(BackendUnavailableError);
      expect(performance.now() - t0).toBeLessThan(2000);
    });
  });

  it('an unreachable server fails within connectTimeout with BackendUnavailableError', async () => {
    const port = await freePort();
    const c = conn(`redis://127.0.0.1:${port}`, { connectTimeout: 2 });
    const t0 = performance.now();
    const err = await c.get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect(performance.now() - t0).toBeLessThan(4000);
    // Known down: the next call fails at once instead of waiting again (the bound is below the
    // 2 s connectTimeout, with room for a loaded machine).
    const t1 = performance.now();
    await expect(c.get()).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(performance.now() - t1).toBeLessThan(1500);
  });

  it('a refused connection fails at once, not after connectTimeout', async () => {
    const port = await freePort();
    const c = conn(`redis://127.0.0.1:${port}`, { connectTimeout: 10 });
    const t0 = performance.now();
    await expect(c.get()).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('concurrent callers before ready share one wait (no listener pile-up)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const c = conn(servers().redisUrl);
      const clients = await Promise.all(Array.from({ length: 200 }, () => c.get()));
      expect(new Set(clients).size).toBe(1);
      await new Promise((r) => setTimeout(r, 20));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('commands fail fast with BackendUnavailableError once the server dies, and recover', async () => {
    const srv = await startRedisServer();
    const c = conn(srv.url, { connectTimeout: 1 });
    expect(await c.run('ping', (r) => r.ping())).toBe('PONG');
    const port = srv.port;
    await srv.kill('SIGKILL');
    const t0 = performance.now();
    await expect(c.run('get', (r) => r.get('k'))).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(performance.now() - t0).toBeLessThan(1500);
    const again = await startRedisServer({ port });
    try {
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = await c
          .run('ping', (r) => r.ping())
          .then(
            () => true,
            () => false,
          );
        if (!ok) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ok).toBe(true);
    } finally {
      await c.close();
      await again.stop();
    }
  });
});

describe('RedisConnection.duplicate during an outage', () => {
  it('a duplicate that never became ready is disconnected, not left reconnecting', async () => {
    const { startFaultProxy } = await import('../harness/fault-proxy.js');
    const u = new URL(servers().redisUrl);
    const proxy = await startFaultProxy({ target: { host: u.hostname, port: Number(u.port) } });
    try {
      const c = conn(proxy.url, { connectTimeout: 0.3, connectionName: 'azs-dup-test' });
      await c.get();
      expect(c.connectionCount).toBe(1);
      // A hung server: TCP is accepted, nothing answers. Each failed attempt must leave nothing.
      proxy.setDown(true, 'hang');
      for (let i = 0; i < 5; i++) {
        await expect(c.duplicate()).rejects.toBeInstanceOf(BackendUnavailableError);
      }
      // A stopped server: refused at once.
      proxy.setDown(true, 'refuse');
      for (let i = 0; i < 5; i++) {
        await expect(c.duplicate()).rejects.toBeInstanceOf(BackendUnavailableError);
      }
      expect(c.connectionCount).toBe(1);
      proxy.setDown(false);
      await expect
        .poll(
          () =>
            c.get().then(
              () => true,
              () => false,
            ),
          { timeout: 10_000 },
        )
        .toBe(true);
      const dup = await c.duplicate();
      expect(await (dup as Redis).ping()).toBe('PONG');
      // The main client and the one good duplicate, nothing else, once the server is back.
      const direct = new Redis(servers().redisUrl);
      try {
        await expect
          .poll(
            async () =>
              ((await direct.client('LIST')) as string)
                .split('\n')
                .filter((l) => l.includes('name=azs-dup-test ')).length,
            { timeout: 10_000 },
          )
          .toBe(2);
        expect(proxy.connections).toBe(2);
        await c.release(dup);
        expect(c.connectionCount).toBe(1);
        await expect.poll(() => proxy.connections, { timeout: 5000 }).toBe(1);
      } finally {
        direct.disconnect();
      }
    } finally {
      await proxy.close();
    }
  });

  it('names every connection it creates (default azscale) and rejects names CLIENT SETNAME refuses', async () => {
    expect(() => new RedisConnection(servers().redisUrl, { connectionName: 'a b' })).toThrow(
      ValidationError,
    );
    const c = conn(servers().redisUrl);
    const client = (await c.get()) as Redis;
    expect(await client.client('GETNAME')).toBe('azscale');
  });
});

describe('RedisConnection timeouts', () => {
  it('rejects timeouts no Node timer can hold, NaN, negative and non-numbers, naming the option', () => {
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY, 3e6, '5']) {
      expect(
        () => new RedisConnection(servers().redisUrl, { connectTimeout: bad as number }),
      ).toThrow(/connectTimeout/);
      expect(
        () => new RedisConnection(servers().redisUrl, { commandTimeout: bad as number }),
      ).toThrow(ValidationError);
    }
    expect(() => new RedisConnection(servers().redisUrl, { connectTimeout: 0 })).toThrow(
      ValidationError,
    );
    // 0 disables the command timeout; 24 days is still one timer.
    new RedisConnection(servers().redisUrl, { commandTimeout: 0, connectTimeout: 24 * 86400 });
  });
});
