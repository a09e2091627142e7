/**
 * Reply errors from real Redis and PostgreSQL servers reach the caller typed (AZS_*), and nothing
 * reachable from the error (message, context, cause chain, util.inspect, JSON) holds the command's
 * arguments, the value written or a password (issue 13, defect 14 and the Errors rule).
 */
import { inspect } from 'node:util';
import type { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { toBackendError } from '../../src/core/backend-errors.js';
import { RedisConnection } from '../../src/core/connection.js';
import {
  isAzscaleError,
  isBackendError,
  isBackendUnavailableError,
} from '../../src/core/errors.js';
import { LuaScript } from '../../src/core/lua-script.js';
import { type ServerHandle, servers, startRedisServer, uniquePrefix } from '../harness/env.js';

const SECRET = 'sk-live-SECRET-4f9a2c';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
});

function everyString(e: unknown, seen = new Set<unknown>()): string[] {
  if (e === null || e === undefined || seen.has(e)) return [];
  if (typeof e === 'string') return [e];
  if (typeof e !== 'object') return [String(e)];
  seen.add(e);
  const out: string[] = [];
  const names = new Set([...Object.getOwnPropertyNames(e), 'message', 'stack', 'cause']);
  for (const k of names) out.push(...everyString((e as Record<string, unknown>)[k], seen));
  return out;
}

/** Asserts the error is typed and that no rendering of it shows `secret`. */
function expectClean(e: unknown, secret = SECRET): void {
  expect(isAzscaleError(e), String(e)).toBe(true);
  expect(inspect(e, { depth: 20 })).not.toContain(secret);
  expect(JSON.stringify(e)).not.toContain(secret);
  expect(String(e)).not.toContain(secret);
  for (const s of everyString(e)) expect(s).not.toContain(secret);
  const cause = (e as Error).cause as Record<string, unknown> | undefined;
  expect(cause).toBeInstanceOf(Error);
  expect(cause?.command).toBeUndefined();
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected the call to fail');
}

function connection(url: string): RedisConnection {
  const c = new RedisConnection(url, { connectTimeout: 2, commandTimeout: 2 });
  cleanups.push(() => c.close());
  return c;
}

describe('Redis reply errors', () => {
  const p = uniquePrefix('err');
  const APPEND = new LuaScript("return redis.call('APPEND', KEYS[1], ARGV[1])", 'test append');
  const SET = new LuaScript("return redis.call('SET', KEYS[1], ARGV[1])", 'test set');

  it('WRONGTYPE from a command is a BackendError without the value', async () => {
    const conn = connection(servers().redisUrl);
    await conn.run('setup', (c) => c.hset(`${p}h`, 'f', '1'));
    const e = await caught(conn.run('test append', (c) => c.append(`${p}h`, SECRET)));
    expect(isBackendError(e)).toBe(true);
    expect((e as Error).message).toMatch(/^WRONGTYPE /);
    expect((e as { context: Record<string, unknown> }).context).toMatchObject({
      backend: 'redis',
      operation: 'test append',
      replyCode: 'WRONGTYPE',
    });
    expectClean(e);
  });

  it('WRONGTYPE inside a script is a BackendError without keys or values', async () => {
    const conn = connection(servers().redisUrl);
    const client = await conn.get();
    const e = await caught(APPEND.run(client, [`${p}h`], [SECRET]));
    expect(isBackendError(e)).toBe(true);
    expect((e as Error).message).toMatch(/WRONGTYPE/);
    expectClean(e);
  });

  it('an error the script raises with an argument in it is masked', async () => {
    const conn = connection(servers().redisUrl);
    const raise = new LuaScript("return redis.error_reply('bad input ' .. ARGV[1])", 'test raise');
    const e = await caught(raise.run(await conn.get(), [`${p}x`], [SECRET]));
    expect(isBackendError(e)).toBe(true);
    expect((e as Error).message).toContain('bad input ***');
    expectClean(e);
  });

  it('"invalid expire time", "not a valid float" and unknown commands carry no arguments', async () => {
    const conn = connection(servers().redisUrl);
    const cases: Promise<unknown>[] = [
      conn.run('set', (c) => c.set(`${p}e`, SECRET, 'EX', -5)),
      conn.run('incrbyfloat', (c) => c.incrbyfloat(`${p}f`, `${SECRET}x` as unknown as number)),
      conn.run('call', (c) => (c as Redis).call('NO-SUCH-COMMAND', SECRET)),
    ];
    const patterns = [/invalid expire time/, /not a valid float/, /unknown command/];
    for (const [i, pr] of cases.entries()) {
      const e = await caught(pr);
      expect(isBackendError(e)).toBe(true);
      expect((e as Error).message).toMatch(patterns[i] as RegExp);
      expectClean(e);
    }
  });

  it('a wrong AUTH password is BackendUnavailableError (auth) that never shows the password', async () => {
    const conn = connection(servers().redisUrl);
    const e = await caught(conn.run('auth', (c) => (c as Redis).call('AUTH', 'someone', SECRET)));
    expect(isBackendUnavailableError(e)).toBe(true);
    expect((e as { context: Record<string, unknown> }).context.auth).toBe(true);
    expectClean(e);
  });

  describe('OOM (maxmemory 1, noeviction)', () => {
    let own: ServerHandle;
    it('is BackendUnavailableError from a command and from a script', async () => {
      own = await startRedisServer();
      cleanups.push(() => own.stop());
      const conn = connection(own.url);
      await conn.run('config', async (c) => {
        await (c as Redis).config('SET', 'maxmemory-policy', 'noeviction');
        await (c as Redis).config('SET', 'maxmemory', '1');
      });
      const e1 = await caught(conn.run('cache set', (c) => c.set(`${p}oom`, SECRET)));
      expect(isBackendUnavailableError(e1)).toBe(true);
      expect((e1 as { context: Record<string, unknown> }).context.replyCode).toBe('OOM');
      expectClean(e1);
      const e2 = await caught(SET.run(await conn.get(), [`${p}oom`], [SECRET]));
      expect(isBackendUnavailableError(e2)).toBe(true);
      expect((e2 as Error).message).toMatch(/OOM/);
      expectClean(e2);
    });
  });

  describe('READONLY (a replica)', () => {
    it('is BackendUnavailableError from a command and from a script', async () => {
      const primary = await startRedisServer();
      cleanups.push(() => primary.stop());
      const replica = await startRedisServer({
        args: ['--replicaof', '127.0.0.1', String(primary.port)],
      });
      cleanups.push(() => replica.stop());
      const conn = connection(replica.url);
      const e1 = await caught(conn.run('session save', (c) => c.set(`${p}ro`, SECRET)));
      expect(isBackendUnavailableError(e1)).toBe(true);
      expect((e1 as { context: Record<string, unknown> }).context.replyCode).toBe('READONLY');
      expectClean(e1);
      const e2 = await caught(SET.run(await conn.get(), [`${p}ro`], [SECRET]));
      expect(isBackendUnavailableError(e2)).toBe(true);
      expectClean(e2);
    });
  });

  it('a connection that dies is BackendUnavailableError through a script too', async () => {
    const own = await startRedisServer();
    const conn = connection(own.url);
    const client = await conn.get();
    await own.kill('SIGKILL');
    const e = await caught(SET.run(client, [`${p}gone`], [SECRET]));
    expect(isBackendUnavailableError(e)).toBe(true);
    expectClean(e);
  });
});

describe('PostgreSQL errors', () => {
  it('constraint violations and bad input are BackendError without values; SQLSTATE in context', async () => {
    const client = new pg.Client({ connectionString: servers().pgPrimaryUrl });
    await client.connect();
    cleanups.push(() => client.end());
    const table = `errs_${Date.now()}`;
    await client.query(`create table ${table} (email text primary key, n int)`);
    cleanups.push(() => client.query(`drop table if exists ${table}`));
    await client.query(`insert into ${table} values ($1, 1)`, [SECRET]);
    const dup = await caught(client.query(`insert into ${table} values ($1, 2)`, [SECRET]));
    // The raw error shows the value (detail: Key (email)=(...) already exists).
    expect(inspect(dup)).toContain(SECRET);
    const e1 = toBackendError(dup, { op: 'db insert', backend: 'postgres' });
    expect(isBackendError(e1)).toBe(true);
    expect(e1.context).toMatchObject({ backend: 'postgres', sqlState: '23505' });
    expect(((e1 as Error).cause as { code?: string }).code).toBe('23505');
    expectClean(e1);

    const bad = await caught(client.query(`select $1::int`, [SECRET]));
    expect(inspect(bad)).toContain(SECRET);
    const e2 = toBackendError(bad, { op: 'db query', backend: 'postgres' });
    expect(isBackendError(e2)).toBe(true);
    expect(e2.context.sqlState).toBe('22P02');
    expectClean(e2);
  });

  it('a read-only standby and a refused connection are BackendUnavailableError', async () => {
    const s = servers();
    const replica = new pg.Client({ connectionString: s.pgReplicaUrls[0] });
    await replica.connect();
    cleanups.push(() => replica.end());
    const ro = await caught(replica.query('create table should_fail (v text)'));
    const e1 = toBackendError(ro, { op: 'db write', backend: 'postgres' });
    expect(isBackendUnavailableError(e1)).toBe(true);
    expect(e1.context.sqlState).toBe('25006');

    const refused = new pg.Client({
      host: '127.0.0.1',
      port: 1,
      user: 'postgres',
      password: SECRET,
    });
    const down = await caught(refused.connect());
    const e2 = toBackendError(down, { op: 'db connect', backend: 'postgres', secrets: [SECRET] });
    expect(isBackendUnavailableError(e2)).toBe(true);
    expectClean(e2);
  });
});
