import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendUnavailableError,
  ClosedError,
  LimitExceededError,
  QueryRoutingError,
  ValidationError,
  isAzscaleError,
  isBackendUnavailableError,
  isQueryRoutingError,
} from '../../src/core/errors.js';
import type { MetricsSink } from '../../src/core/metrics.js';
import { DatabaseRouter, type DbContext, type DbQueryEvent, dbNodeOf } from '../../src/db/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { caughtUp, deadUrl, sql, waitFor } from './helpers.js';

const s = servers();
const primaryUrl = s.pgPrimaryUrl;
const replicaUrl = s.pgReplicaUrls[0] as string;

function table(): string {
  return uniquePrefix('db')
    .replace(/[^a-z0-9]/g, '_')
    .replace(/_+$/, '');
}

const routers: DatabaseRouter[] = [];
function router(
  opts: Partial<ConstructorParameters<typeof DatabaseRouter>[0]> = {},
): DatabaseRouter {
  const db = new DatabaseRouter({
    primary: primaryUrl,
    replicas: [replicaUrl],
    pool: { poolSize: 2, maxOverflow: 3 },
    healthCheckInterval: 0,
    ...opts,
  });
  routers.push(db);
  return db;
}

afterAll(async () => {
  await Promise.all(routers.map((r) => r.close()));
});

describe('DatabaseRouter: options', () => {
  it('rejects bad options with a ValidationError naming the option', () => {
    const bad: [unknown, string][] = [
      [{}, 'primary'],
      [{ primary: 'mysql://x' }, 'primary'],
      [{ primary: primaryUrl, replicas: 'x' }, 'replicas'],
      [{ primary: primaryUrl, replicas: [42] }, 'replicas[0]'],
      [{ primary: primaryUrl, pool: { poolSize: -1 } }, 'pool.poolSize'],
      [{ primary: primaryUrl, pool: { poolSize: 0, maxOverflow: 0 } }, 'pool.poolSize'],
      [{ primary: primaryUrl, pool: { poolTimeout: 0 } }, 'pool.poolTimeout (seconds)'],
      [{ primary: primaryUrl, pool: { prePing: 'yes' } }, 'pool.prePing'],
      [{ primary: primaryUrl, readYourWrites: { mode: 'sticky' } }, 'readYourWrites'],
      [
        { primary: primaryUrl, readYourWrites: { mode: 'window' } },
        'readYourWrites.seconds (seconds)',
      ],
      [{ primary: primaryUrl, maxReplicaLag: -1 }, 'maxReplicaLag (seconds)'],
      [{ primary: primaryUrl, healthCheckInterval: 'often' }, 'healthCheckInterval (seconds)'],
      [{ primary: primaryUrl, maxFails: 0 }, 'maxFails'],
      [{ primary: primaryUrl, failTimeout: 0 }, 'failTimeout (seconds)'],
      [{ primary: primaryUrl, primaryFallbackLimit: 1.5 }, 'primaryFallbackLimit'],
    ];
    for (const [opts, option] of bad) {
      let err: unknown;
      try {
        new DatabaseRouter(opts as ConstructorParameters<typeof DatabaseRouter>[0]).close();
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(opts)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).option).toBe(option);
    }
  });

  it('never puts a password from a URL into an error message', () => {
    try {
      new DatabaseRouter({ primary: 'redis://u:hunter2@h/db' });
    } catch (e) {
      expect(String((e as Error).message)).not.toContain('hunter2');
    }
    const db = router({ primary: 'postgresql://u:hunter2@127.0.0.1:1/db', replicas: [] });
    expect(JSON.stringify(db.stats())).not.toContain('hunter2');
  });

  it("maps the seed's pool options onto pg-pool, and PoolConfig fields win", async () => {
    const db = router({ pool: undefined });
    const opts = (db.getWritePool() as unknown as { options: pg.PoolConfig }).options;
    expect(opts.max).toBe(30); // poolSize 20 + maxOverflow 10
    expect(opts.min).toBe(20);
    expect(opts.connectionTimeoutMillis).toBe(30_000); // poolTimeout 30 s
    expect(opts.maxLifetimeSeconds).toBe(3600); // poolRecycle
    const db2 = router({
      primary: { connectionString: primaryUrl, max: 4 },
      pool: { poolSize: 5, maxOverflow: 1, poolTimeout: 2, poolRecycle: 60 },
    });
    const o2 = (db2.getWritePool() as unknown as { options: pg.PoolConfig }).options;
    expect(o2.max).toBe(4);
    expect(o2.connectionTimeoutMillis).toBe(2000);
    expect(o2.maxLifetimeSeconds).toBe(60);
    const r2 = (db2.getReadPool() as unknown as { options: pg.PoolConfig }).options;
    expect(r2.max).toBe(6);
    expect(r2.min).toBe(5);
  });
});

describe('DatabaseRouter: routing', () => {
  const t = table();
  beforeAll(async () => {
    await sql(primaryUrl, `CREATE TABLE ${t} (id int PRIMARY KEY, v text)`);
    await sql(
      primaryUrl,
      `CREATE FUNCTION ${t}_w() RETURNS int LANGUAGE sql AS 'INSERT INTO ${t} VALUES (-1, ''w'') RETURNING 1'`,
    );
    await caughtUp(primaryUrl, replicaUrl);
  });

  it('sends writes to the primary and reads to the replica, and says so', async () => {
    const db = router();
    const events: DbQueryEvent[] = [];
    db.on('query', (e) => events.push(e));
    const w = await db.write(`INSERT INTO ${t} VALUES (1, 'a')`);
    expect(w.node.name).toBe('primary');
    expect(w.rowCount).toBe(1);
    const r = await db.read('SELECT pg_is_in_recovery() AS standby');
    expect(r.node.name).toBe('replica-0');
    expect(r.rows[0]?.standby).toBe(true);
    const q = await db.query('SELECT pg_is_in_recovery() AS standby');
    expect(q.rows[0]?.standby).toBe(false); // default role: write, on the primary
    const q2 = await db.query('SELECT pg_is_in_recovery() AS standby', [], { role: 'read' });
    expect(q2.rows[0]?.standby).toBe(true);
    expect(events.map((e) => [e.kind, e.node.name, e.reason, e.ok])).toEqual([
      ['write', 'primary', 'write', true],
      ['read', 'replica-0', 'replica', true],
      ['write', 'primary', 'write', true],
      ['read', 'replica-0', 'replica', true],
    ]);
    expect(events[1]?.node).toMatchObject({
      role: 'replica',
      host: '127.0.0.1',
      port: Number(new URL(replicaUrl).port),
    });
    expect(events[1]?.duration).toBeGreaterThan(0);
    const st = db.stats();
    expect(st.primary.served).toBe(2);
    expect(st.replicas[0]?.served).toBe(2);
    expect(st.nodes.map((n) => n.role)).toEqual(['primary', 'replica']);
  });

  it('reports queries per node to the metrics sink', async () => {
    const counts = new Map<string, number>();
    const metrics: MetricsSink = {
      counter: (name, labels) => ({
        inc: (v = 1) => {
          const k = `${name}${JSON.stringify(labels ?? {})}`;
          counts.set(k, (counts.get(k) ?? 0) + v);
        },
      }),
      histogram: () => ({ observe() {} }),
      gauge: () => ({ set() {}, inc() {}, dec() {} }),
    };
    const db = router({ metrics });
    await db.read('SELECT 1');
    await db.read('SELECT 1');
    await db.write('SELECT 1');
    expect(counts.get('db_queries_total{"node":"replica-0","role":"replica","kind":"read"}')).toBe(
      2,
    );
    expect(counts.get('db_queries_total{"node":"primary","role":"primary","kind":"write"}')).toBe(
      1,
    );
  });

  it('round-robins reads over the replicas', async () => {
    const db = router({ replicas: [replicaUrl, replicaUrl, replicaUrl] });
    const names: string[] = [];
    for (let i = 0; i < 6; i++) names.push((await db.read('SELECT 1')).node.name);
    expect(names).toEqual([
      'replica-0',
      'replica-1',
      'replica-2',
      'replica-0',
      'replica-1',
      'replica-2',
    ]);
  });

  it('passes SQL errors through unchanged, with the node attached', async () => {
    const db = router();
    const err = await db.read(`SELECT * FROM ${t}_missing`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('42P01');
    expect(dbNodeOf(err)).toMatchObject({ name: 'replica-0', role: 'replica' });
    const err2 = await db.write(`INSERT INTO ${t} VALUES (1, 'dup')`).catch((e: unknown) => e);
    expect((err2 as pg.DatabaseError).code).toBe('23505');
    expect((err2 as { node?: { name: string } }).node?.name).toBe('primary');
    // A SQL error does not count against the node.
    expect(db.stats().replicas[0]?.healthy).toBe(true);
    expect(db.stats().replicas[0]?.failures).toBe(0);
  });

  it('SQL errors carry no row values or parameters (detail, where, quoted values)', async () => {
    const db = router();
    const secret = 'ada-secret-4711@example.com';
    await db.write(`CREATE TABLE ${t}_u (email text UNIQUE, n int)`);
    await db.write(`INSERT INTO ${t}_u VALUES ($1, 1)`, [secret]);
    const dup = await db
      .write(`INSERT INTO ${t}_u VALUES ($1, 2)`, [secret])
      .catch((e: unknown) => e);
    expect((dup as pg.DatabaseError).code).toBe('23505');
    expect((dup as pg.DatabaseError).constraint).toMatch(/email/);
    const bad = await db
      .write(`INSERT INTO ${t}_u VALUES ('x', $1)`, [secret])
      .catch((e: unknown) => e);
    expect((bad as pg.DatabaseError).code).toBe('22P02');
    expect((bad as Error).message).toMatch(/invalid input syntax for type integer/);
    for (const e of [dup, bad]) {
      // Still pg's error with its SQLSTATE (issue 6), and an azscale error too (issue 13).
      expect(e).toBeInstanceOf(pg.DatabaseError);
      expect(isAzscaleError(e)).toBe(true);
      expect((e as { context: { sqlState: string } }).context.sqlState).toBe(
        (e as pg.DatabaseError).code,
      );
      const everything = `${JSON.stringify(e)} ${(e as Error).message} ${(e as Error).stack} ${Object.values(e as object).join(' ')}`;
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain('ada-secret');
    }
  });

  it('refuses a write sent as a read with QueryRoutingError', async () => {
    const db = router();
    for (const stmt of [
      `INSERT INTO ${t} VALUES (2, 'x')`,
      `  /* c */ update ${t} SET v = 'y'`,
      `-- note\nDELETE FROM ${t}`,
      `WITH x AS (DELETE FROM ${t} RETURNING *) SELECT * FROM x`,
      `SELECT * FROM ${t} FOR UPDATE`,
      `CREATE TABLE ${t}_x (a int)`,
    ]) {
      const e = await db.read(stmt).catch((x: unknown) => x);
      expect(e, stmt).toBeInstanceOf(QueryRoutingError);
      expect(isQueryRoutingError(e)).toBe(true);
      const e2 = await db.query(stmt, [], { role: 'read' }).catch((x: unknown) => x);
      expect(e2, stmt).toBeInstanceOf(QueryRoutingError);
    }
    // A write hidden in a function is refused by the replica (25006), reported the same way.
    const e3 = await db.read(`SELECT ${t}_w()`).catch((x: unknown) => x);
    expect(e3).toBeInstanceOf(QueryRoutingError);
    expect(((e3 as Error).cause as pg.DatabaseError).code).toBe('25006');
    expect(dbNodeOf(e3)?.name).toBe('replica-0');
    // Reads that merely look similar pass.
    await expect(
      db.read(`SELECT v AS updated FROM ${t} WHERE v <> 'delete'`),
    ).resolves.toBeDefined();
  });

  it('accepts pg QueryConfig objects and typed rows', async () => {
    const db = router();
    const r = await db.read<{ n: number }>({ text: 'SELECT $1::int AS n', values: [7] });
    expect(r.rows[0]?.n).toBe(7);
    const r2 = await db.read<{ n: number }>({ text: 'SELECT $1::int AS n' }, [8]);
    expect(r2.rows[0]?.n).toBe(8);
  });

  it('validates call arguments', async () => {
    const db = router();
    await expect(db.read('')).rejects.toBeInstanceOf(ValidationError);
    await expect(db.read('SELECT 1', 'x' as unknown as unknown[])).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(db.read('SELECT 1', [], [] as unknown as DbContext)).rejects.toThrow(/ctx/);
    await expect(db.read('SELECT 1', [], { lsn: 'nope' })).rejects.toThrow(/ctx\.lsn/);
    await expect(db.query('SELECT 1', [], { role: 'admin' as 'read' })).rejects.toThrow(/role/);
  });
});

describe('DatabaseRouter: read-your-writes', () => {
  const t = table();
  beforeAll(async () => {
    await sql(primaryUrl, `CREATE TABLE ${t} (id int PRIMARY KEY, v int)`);
    await caughtUp(primaryUrl, replicaUrl);
  });

  it('lsn mode: a write records the WAL position in a JSON-safe ctx; reads honour it', async () => {
    const db = router({ readYourWrites: { mode: 'lsn' } });
    let ctx: DbContext = {};
    await db.write(`INSERT INTO ${t} VALUES (1, 1)`, [], ctx);
    expect(ctx.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const first = ctx.lsn as string;
    ctx = JSON.parse(JSON.stringify(ctx));
    const r = await db.read<{ v: number }>(`SELECT v FROM ${t} WHERE id = 1`, [], ctx);
    expect(r.rows[0]?.v).toBe(1);
    await db.query(`UPDATE ${t} SET v = 2 WHERE id = 1`, [], { ctx });
    expect(ctx.lsn).not.toBe(first);
    const r2 = await db.query<{ v: number }>(`SELECT v FROM ${t} WHERE id = 1`, [], {
      role: 'read',
      ctx,
    });
    expect(r2.rows[0]?.v).toBe(2);
    // A ctx past the primary's own position (a restore, a forged ctx) is dropped, not waited
    // for: see ctx.test.ts. getReadPool only uses what it knows (no I/O), so it cannot tell
    // such a ctx from a fresh one and gives the primary's pool.
    expect(db.getReadPool({ lsn: 'FFFFFF/0' })).toBe(db.getWritePool());
  });

  it('window mode: reads with a ctx that wrote recently go to the primary', async () => {
    const db = router({ readYourWrites: { mode: 'window', seconds: 1 } });
    const ctx: DbContext = {};
    const events: DbQueryEvent[] = [];
    db.on('query', (e) => events.push(e));
    await db.write(`INSERT INTO ${t} VALUES (2, 1)`, [], ctx);
    expect(typeof ctx.lastWriteAtMs).toBe('number');
    expect((await db.read('SELECT 1', [], ctx)).node.name).toBe('primary');
    expect((await db.read('SELECT 1')).node.name).toBe('replica-0'); // no ctx: may be stale
    await new Promise((r) => setTimeout(r, 1050));
    expect((await db.read('SELECT 1', [], ctx)).node.name).toBe('replica-0');
    expect(events.filter((e) => e.kind === 'read').map((e) => e.reason)).toEqual([
      'window',
      'replica',
      'replica',
    ]);
  });

  it('transactions: commit on the primary records ctx; read-only ones use a replica', async () => {
    const db = router({ readYourWrites: { mode: 'lsn' } });
    const ctx: DbContext = {};
    const n = await db.transaction(
      async (c) => {
        await c.query(`INSERT INTO ${t} VALUES (3, 3)`);
        await c.query(`UPDATE ${t} SET v = 4 WHERE id = 3`);
        return (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r;
      },
      { ctx },
    );
    expect(n).toBe(false);
    expect(ctx.lsn).toBeDefined();
    const seen = await db.transaction(
      async (c) => {
        const standby = (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r;
        const v = (await c.query(`SELECT v FROM ${t} WHERE id = 3`)).rows[0]?.v;
        return { standby, v };
      },
      { readOnly: true, ctx },
    );
    expect(seen.v).toBe(4);
    // A throw rolls back.
    await expect(
      db.transaction(async (c) => {
        await c.query(`INSERT INTO ${t} VALUES (5, 5)`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await db.write(`SELECT count(*)::int AS n FROM ${t} WHERE id = 5`)).rows[0]?.n).toBe(0);
    // A read-only transaction on the replica cannot write.
    const e = await db
      .transaction((c) => c.query(`INSERT INTO ${t} VALUES (6, 6)`), { readOnly: true })
      .catch((x: unknown) => x);
    expect((e as { code?: string }).code === '25006' || isQueryRoutingError(e)).toBe(true);
    // The pool did not leak clients.
    await waitFor('clients back', () => db.stats().nodes.every((x) => x.inFlight === 0));
  });
});

describe('DatabaseRouter: failures', () => {
  it('a dead replica costs no read: retried on the primary, ejected, probed back', async () => {
    const dead = await deadUrl();
    const db = router({ replicas: [dead], failTimeout: 0.3 });
    const ejected: string[] = [];
    const retried: string[] = [];
    db.on('eject', (e) => ejected.push(e.node.name));
    db.on('retry', (e) => retried.push(e.from.name));
    const r = await db.read('SELECT pg_is_in_recovery() AS standby');
    expect(r.node.name).toBe('primary');
    expect(retried).toEqual(['replica-0']);
    expect(ejected).toEqual(['replica-0']);
    const st = db.stats().replicas[0];
    expect(st?.healthy).toBe(false);
    expect(st?.lastError).toMatch(/ECONNREFUSED|connect/i);
    // While ejected, reads go straight to the primary (no retry).
    await db.read('SELECT 1');
    expect(retried).toHaveLength(1);
    // After failTimeout a probe runs; it fails again, so the node stays out.
    await new Promise((r) => setTimeout(r, 350));
    await db.read('SELECT 1');
    await waitFor('probe', () => (db.stats().replicas[0]?.failures ?? 0) >= 2);
    expect(db.stats().replicas[0]?.healthy).toBe(false);
    expect(db.stats().nodes.map((n) => n.inFlight)).toEqual([0, 0]);
    expect(db.stats().fallback.inFlight).toBe(0);
  });

  it('a dead primary fails writes with BackendUnavailableError naming the node', async () => {
    const dead = await deadUrl();
    const db = router({ primary: dead, replicas: [replicaUrl] });
    const e = await db.write('SELECT 1').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(isBackendUnavailableError(e)).toBe(true);
    expect(dbNodeOf(e)?.name).toBe('primary');
    expect((e as BackendUnavailableError).context).toMatchObject({
      name: 'primary',
      role: 'primary',
    });
    // Reads still work from the replica.
    expect((await db.read('SELECT 1')).node.name).toBe('replica-0');
  });

  it('limits primary fallback reads when no replica is fit', async () => {
    const dead = await deadUrl();
    const db = router({
      replicas: [dead],
      primaryFallbackLimit: 2,
      pool: { poolSize: 2, maxOverflow: 6, poolTimeout: 1.5 },
      failTimeout: 30,
    });
    await db.read('SELECT 1'); // ejects the replica
    let peak = 0;
    const timer = setInterval(() => {
      peak = Math.max(peak, db.stats().fallback.inFlight);
    }, 5);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => db.read('SELECT pg_sleep(0.6)')),
    );
    clearInterval(timer);
    expect(peak).toBeLessThanOrEqual(2);
    const failed = results.filter((x) => x.status === 'rejected');
    // 8 reads of 0.6 s through 2 slots with a 1.5 s wait: the second pair waits 0.6 s (served
    // even on a loaded machine), the last pair would wait 1.8 s (refused). Whether the third pair
    // (1.2 s) is served is left open.
    expect(failed.length).toBeGreaterThan(0);
    expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(LimitExceededError);
    expect(results.filter((x) => x.status === 'fulfilled').length).toBeGreaterThanOrEqual(4);
    const db0 = router({ replicas: [dead], primaryFallbackLimit: 0 });
    await expect(db0.read('SELECT 1')).rejects.toBeInstanceOf(BackendUnavailableError);
    // Writes are never limited.
    await expect(db0.write('SELECT 1')).resolves.toBeDefined();
  });

  it('with no replicas configured, reads use the primary and are not limited', async () => {
    const db = router({ replicas: [], primaryFallbackLimit: 1 });
    const reasons: string[] = [];
    db.on('query', (e) => reasons.push(e.reason));
    const t0 = performance.now();
    const rs = await Promise.all(
      Array.from({ length: 3 }, () => db.read('SELECT pg_sleep(1), 1 AS n')),
    );
    // In parallel about 1 s; one at a time >= 3 s. The gap leaves room for connecting on a
    // loaded machine.
    expect(performance.now() - t0).toBeLessThan(2800);
    expect(rs.map((r) => r.node.name)).toEqual(['primary', 'primary', 'primary']);
    expect(reasons).toEqual(['no-replicas', 'no-replicas', 'no-replicas']);
    expect(db.getReadPool()).toBe(db.getWritePool());
  });

  it('a read-only transaction whose replica is dead runs on the primary instead', async () => {
    const dead = await deadUrl();
    const db = router({ replicas: [dead] });
    const events: DbQueryEvent[] = [];
    db.on('query', (e) => events.push(e));
    const standby = await db.transaction(
      async (c) => (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]?.r,
      { readOnly: true },
    );
    expect(standby).toBe(false);
    const last = events.at(-1);
    expect(last).toMatchObject({ kind: 'transaction', retry: true, ok: true, reason: 'fallback' });
    expect(last?.node.name).toBe('primary');
    // A write transaction on a dead primary fails with BackendUnavailableError.
    const db2 = router({ primary: dead, replicas: [] });
    await expect(db2.transaction(async () => 1)).rejects.toBeInstanceOf(BackendUnavailableError);
  });

  it('getReadPool round-robins over fit replicas and gives the primary when none is fit', async () => {
    const db = router({ replicas: [replicaUrl, replicaUrl] });
    const a = db.getReadPool();
    const b = db.getReadPool();
    expect(a).not.toBe(b);
    expect(a).not.toBe(db.getWritePool());
    expect(db.getReadPool()).toBe(a);
    const dead = await deadUrl();
    const db2 = router({ replicas: [dead] });
    await db2.read('SELECT 1'); // ejects the dead replica
    expect(db2.getReadPool()).toBe(db2.getWritePool());
  });

  it('connection loss mid-statement: a write gets BackendUnavailableError, a read is retried', async () => {
    const app = `azs-kill-${Math.random().toString(36).slice(2, 8)}`;
    const db = router({
      primary: { connectionString: primaryUrl, application_name: app },
      replicas: [{ connectionString: replicaUrl, application_name: app }],
    });
    const kill = (url: string) =>
      waitFor('backend to kill', async () => {
        const rows = await sql<{ ok: boolean }>(
          url,
          "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%azs-kill-me%' AND state = 'active'",
          [app],
        );
        return rows.length > 0;
      });
    const w = db.write('SELECT /* azs-kill-me */ pg_sleep(3)').catch((e: unknown) => e);
    await kill(primaryUrl);
    const we = await w;
    expect(we).toBeInstanceOf(BackendUnavailableError);
    expect(((we as Error).cause as { code?: string }).code).toBe('57P01');
    expect(dbNodeOf(we)?.name).toBe('primary');
    const retries: string[] = [];
    db.on('retry', (e) => retries.push(e.from.name));
    // Sleeps on the replica (where it is killed), not on the primary (where it is retried).
    const r = db.read<{ r: boolean }>(
      'SELECT /* azs-kill-me */ pg_sleep(CASE WHEN pg_is_in_recovery() THEN 3 ELSE 0 END), pg_is_in_recovery() AS r',
    );
    await kill(replicaUrl);
    const got = await r;
    expect(retries).toEqual(['replica-0']);
    expect(got.node.name).toBe('primary');
    expect(got.rows[0]?.r).toBe(false);
  });

  it('prePing replaces connections the server dropped while idle', async () => {
    const seen: string[] = [];
    class Spy extends pg.Client {
      // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
      override query(...args: any[]): any {
        if (typeof args[0] === 'string') seen.push(args[0]);
        // biome-ignore lint/suspicious/noExplicitAny: pg's overloads
        return (super.query as any)(...args);
      }
    }
    const db = router({
      primary: {
        connectionString: primaryUrl,
        Client: Spy as unknown as pg.PoolConfig['Client'],
        application_name: 'azs-preping',
      },
      replicas: [],
      pool: { poolSize: 1, maxOverflow: 0, prePingAfter: 0 },
    });
    await db.write('SELECT 1');
    await new Promise((r) => setTimeout(r, 5));
    await db.write('SELECT 2');
    expect(seen).toEqual(['SELECT 1', ';', 'SELECT 2']);
    await sql(
      primaryUrl,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'azs-preping'",
    );
    await new Promise((r) => setTimeout(r, 20));
    const r = await db.write('SELECT 3 AS n');
    expect(r.rows[0]?.n).toBe(3);
    expect(db.stats().primary.failures).toBe(0);
    // prePing: false never pings.
    seen.length = 0;
    const db2 = router({
      primary: { connectionString: primaryUrl, Client: Spy as unknown as pg.PoolConfig['Client'] },
      replicas: [],
      pool: { poolSize: 1, maxOverflow: 0, prePing: false, prePingAfter: 0 },
    });
    await db2.write('SELECT 1');
    await new Promise((r) => setTimeout(r, 5));
    await db2.write('SELECT 2');
    expect(seen).toEqual(['SELECT 1', 'SELECT 2']);
  });
});

describe('DatabaseRouter: health, stats and close', () => {
  it('checkHealth reports recovery state, replay position and lag', async () => {
    const db = router();
    const st = await db.checkHealth();
    expect(st.primary).toMatchObject({
      role: 'primary',
      healthy: true,
      inRecovery: false,
      lag: null,
    });
    expect(st.primary.lsn).toMatch(/\//);
    expect(st.replicas[0]).toMatchObject({ role: 'replica', healthy: true, inRecovery: true });
    expect(typeof st.replicas[0]?.lag).toBe('number');
    expect(st.replicas[0]?.lsn).toMatch(/\//);
  });

  it('a health check stuck behind a busy pool does not eject the replica', async () => {
    const db = router({ pool: { poolSize: 1, maxOverflow: 0 }, healthCheckTimeout: 0.2 });
    const busy = db.read('SELECT pg_sleep(0.8)');
    await waitFor('busy', () => db.stats().replicas[0]?.inFlight === 1);
    const st = await db.checkHealth();
    expect(st.replicas[0]?.healthy).toBe(true);
    expect(st.replicas[0]?.ejections).toBe(0);
    await busy;
  });

  it('runs health checks every healthCheckInterval seconds', async () => {
    const db = router({ healthCheckInterval: 0.1 });
    await waitFor('a check', () => db.stats().replicas[0]?.lsn !== null, 5000);
  });

  it('close() ends the pools it created and leaves pools passed in open', async () => {
    const mine = new pg.Pool({ connectionString: replicaUrl, max: 2 });
    const db = new DatabaseRouter({
      primary: primaryUrl,
      replicas: [mine],
      healthCheckInterval: 0,
    });
    await db.read('SELECT 1');
    await db.write('SELECT 1');
    const created = db.getWritePool();
    await db.close();
    await db.close(); // idempotent
    expect((created as unknown as { ended: boolean }).ended).toBe(true);
    expect(mine.listenerCount('error')).toBe(0);
    expect((await mine.query('SELECT 1 AS n')).rows[0]?.n).toBe(1);
    await mine.end();
    await expect(db.read('SELECT 1')).rejects.toBeInstanceOf(ClosedError);
    expect(() => db.getWritePool()).toThrow(ClosedError);
  });
});
