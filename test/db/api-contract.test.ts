/**
 * API contract of DatabaseRouter, written from the issue text: the names, options and
 * shapes it gives, used exactly as written, against the real primary and streaming replica.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dbModule from '../../src/db/index.js';
import {
  BackendUnavailableError,
  ClosedError,
  DatabaseRouter,
  type DbContext,
  type DbQueryEvent,
  dbNodeOf,
} from '../../src/index.js';
import {
  type PostgresHandle,
  freePort,
  servers,
  startPostgres,
  uniquePrefix,
} from '../harness/env.js';

const s = servers();
const primaryUrl = s.pgPrimaryUrl;
const replicaUrl = s.pgReplicaUrls[0] as string;

function tableName(): string {
  return uniquePrefix('c6')
    .replace(/[^a-z0-9]/g, '_')
    .replace(/_+$/, '');
}

async function once<R extends pg.QueryResultRow>(
  url: string,
  text: string,
  values?: unknown[],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, values)).rows;
  } finally {
    await c.end();
  }
}

async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // retry
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function replicaHas(url: string, table: string, id: number): Promise<boolean> {
  const rows = await once<{ n: number }>(
    url,
    `SELECT count(*)::int AS n FROM ${table} WHERE id = $1`,
    [id],
  );
  return rows[0]?.n === 1;
}

const routers: DatabaseRouter[] = [];
function track(db: DatabaseRouter): DatabaseRouter {
  routers.push(db);
  return db;
}

afterAll(async () => {
  await Promise.all(routers.map((r) => r.close()));
});

describe('db API contract: exports', () => {
  it('DatabaseRouter is exported from azscale and azscale/db (same class)', () => {
    expect(dbModule.DatabaseRouter).toBe(DatabaseRouter);
    expect(typeof DatabaseRouter).toBe('function');
    expect(dbModule.BackendUnavailableError).toBe(BackendUnavailableError);
  });
});

describe('db API contract: DatabaseRouter on the shared primary + replica', () => {
  const table = tableName();
  let db: DatabaseRouter;

  beforeAll(async () => {
    db = track(
      new DatabaseRouter({
        primary: primaryUrl,
        replicas: [replicaUrl],
        pool: { poolSize: 2, maxOverflow: 3, poolTimeout: 5, poolRecycle: 3600, prePing: true },
        readYourWrites: { mode: 'lsn' },
        maxReplicaLag: 30,
        healthCheckInterval: 0.5,
      }),
    );
    await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text NOT NULL)`, []);
    await db.write(`INSERT INTO ${table} VALUES (0, 'zero')`, []);
    await until('replica has the table', () => replicaHas(replicaUrl, table, 0));
  });

  it('getWritePool() is the primary pg Pool; getReadPool() a replica pool', async () => {
    const w = db.getWritePool();
    expect(typeof w.query).toBe('function');
    const wr = await w.query('SELECT pg_is_in_recovery() AS r');
    expect(wr.rows[0].r).toBe(false);
    await until('replica checked healthy', async () => {
      const r = await db.getReadPool().query('SELECT pg_is_in_recovery() AS r');
      return r.rows[0].r === true;
    });
    const withCtx = db.getReadPool({});
    expect(typeof withCtx.query).toBe('function');
  });

  it('query() defaults to the primary (write); role read goes to a replica', async () => {
    const def = await db.query('SELECT pg_is_in_recovery() AS r', []);
    expect(def.rows[0]?.r).toBe(false);
    const asWrite = await db.query('SELECT pg_is_in_recovery() AS r', [], { role: 'write' });
    expect(asWrite.rows[0]?.r).toBe(false);
    const asRead = await db.query('SELECT pg_is_in_recovery() AS r', [], { role: 'read' });
    expect(asRead.rows[0]?.r).toBe(true);
    const read = await db.read('SELECT pg_is_in_recovery() AS r', []);
    expect(read.rows[0]?.r).toBe(true);
    const write = await db.write('SELECT pg_is_in_recovery() AS r', []);
    expect(write.rows[0]?.r).toBe(false);
  });

  it('a write sent with role read errors clearly and writes nothing', async () => {
    await expect(
      db.query(`INSERT INTO ${table} VALUES (999, 'x')`, [], { role: 'read' }),
    ).rejects.toThrow(/writ/i);
    const rows = await once(primaryUrl, `SELECT 1 FROM ${table} WHERE id = 999`);
    expect(rows).toHaveLength(0);
  });

  it('lsn read-your-writes: a read with ctx right after a write sees it (JSON ctx)', async () => {
    let session = '{}';
    for (let i = 1; i <= 40; i++) {
      const ctx = JSON.parse(session) as DbContext;
      await db.write(`INSERT INTO ${table} VALUES ($1, $2)`, [1000 + i, `v${i}`], ctx);
      session = JSON.stringify(ctx);
      const again = JSON.parse(session) as DbContext;
      const r = await db.read(`SELECT v FROM ${table} WHERE id = $1`, [1000 + i], again);
      expect(r.rows[0]?.v).toBe(`v${i}`);
    }
    expect(JSON.parse(session)).toHaveProperty('lsn');
  });

  it('query(sql, params, { role, ctx }) records and honours ctx', async () => {
    const ctx: DbContext = {};
    await db.query(`INSERT INTO ${table} VALUES ($1, 'q')`, [2000], { role: 'write', ctx });
    expect(Object.keys(ctx).length).toBeGreaterThan(0);
    const r = await db.query(`SELECT v FROM ${table} WHERE id = $1`, [2000], { role: 'read', ctx });
    expect(r.rows[0]?.v).toBe('q');
  });

  it('SQL errors pass through unchanged with the serving node attached', async () => {
    const err = await db.read('SELECT * FROM no_such_table_c6', []).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('42P01');
    expect(err).not.toBeInstanceOf(BackendUnavailableError);
    expect(dbNodeOf(err)?.role).toBe('replica');
    const werr = await db.write('SELECT * FROM no_such_table_c6', []).catch((e: unknown) => e);
    expect((werr as { code?: string }).code).toBe('42P01');
    expect(dbNodeOf(werr)?.role).toBe('primary');
  });

  it('transaction(fn) commits on the primary; { readOnly: true } runs on a replica', async () => {
    const out = await db.transaction(async (client) => {
      await client.query(`INSERT INTO ${table} VALUES (3000, 't')`);
      const r = await client.query('SELECT pg_is_in_recovery() AS r');
      return r.rows[0].r as boolean;
    });
    expect(out).toBe(false);
    expect(await once(primaryUrl, `SELECT v FROM ${table} WHERE id = 3000`)).toEqual([{ v: 't' }]);

    await expect(
      db.transaction(async (client) => {
        await client.query(`INSERT INTO ${table} VALUES (3001, 'rolled back')`);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await once(primaryUrl, `SELECT v FROM ${table} WHERE id = 3001`)).toEqual([]);

    const ro = await db.transaction(
      async (client) => {
        const r = await client.query('SELECT pg_is_in_recovery() AS r');
        return r.rows[0].r as boolean;
      },
      { readOnly: true },
    );
    expect(ro).toBe(true);
  });

  it('stats(): per node role, healthy, lag, in-flight and served', async () => {
    const before = db.stats();
    const nodes = before.nodes;
    expect(nodes.map((n) => n.role)).toEqual(['primary', 'replica']);
    const replicaBefore = nodes.find((n) => n.role === 'replica');
    for (const n of nodes) {
      expect(typeof n.healthy).toBe('boolean');
      expect(n).toHaveProperty('lag');
      expect(typeof n.inFlight).toBe('number');
      expect(typeof n.served).toBe('number');
    }
    for (let i = 0; i < 5; i++) await db.read('SELECT 1', []);
    const after = db.stats();
    const replicaAfter = after.nodes.find((n) => n.role === 'replica');
    expect(replicaAfter?.healthy).toBe(true);
    expect((replicaAfter?.served ?? 0) - (replicaBefore?.served ?? 0)).toBe(5);
    expect(replicaAfter?.inFlight).toBe(0);
    expect(after.primary.role).toBe('primary');
    expect(after.replicas).toHaveLength(1);
  });

  it('every query can report which node served it', async () => {
    const seen: DbQueryEvent[] = [];
    const off = db.on('query', (e) => seen.push(e));
    await db.read('SELECT 1', []);
    await db.write('SELECT 1', []);
    off();
    expect(seen.map((e) => e.node.role)).toEqual(['replica', 'primary']);
    const r = await db.read('SELECT 1 AS one', []);
    expect(r.node.role).toBe('replica');
  });
});

describe('db API contract: other option forms', () => {
  it('accepts a pg Pool and a PoolConfig as nodes; close() leaves a passed Pool open', async () => {
    const own = new pg.Pool({ connectionString: primaryUrl, max: 2 });
    const db = new DatabaseRouter({
      primary: own,
      replicas: [{ connectionString: replicaUrl }],
      healthCheckInterval: 0,
    });
    expect(db.getWritePool()).toBe(own);
    const r = await db.read('SELECT pg_is_in_recovery() AS r', []);
    expect(r.rows[0]?.r).toBe(true);
    await db.close();
    await expect(db.read('SELECT 1', [])).rejects.toBeInstanceOf(ClosedError);
    const still = await own.query('SELECT 1 AS one');
    expect(still.rows[0].one).toBe(1);
    await own.end();
  });

  it('window mode: reads with ctx go to the primary for `seconds` after a write', async () => {
    const db = track(
      new DatabaseRouter({
        primary: primaryUrl,
        replicas: [replicaUrl],
        readYourWrites: { mode: 'window', seconds: 1 },
        healthCheckInterval: 0,
        pool: { poolSize: 1, maxOverflow: 1 },
      }),
    );
    const ctx: DbContext = {};
    await db.write('SELECT 1', [], ctx);
    const during = await db.read('SELECT pg_is_in_recovery() AS r', [], ctx);
    expect(during.rows[0]?.r).toBe(false);
    const noCtx = await db.read('SELECT pg_is_in_recovery() AS r', []);
    expect(noCtx.rows[0]?.r).toBe(true);
    await new Promise((r) => setTimeout(r, 1200));
    const after = await db.read('SELECT pg_is_in_recovery() AS r', [], ctx);
    expect(after.rows[0]?.r).toBe(true);
  });

  it('readYourWrites: false: reads with ctx still go to the replica', async () => {
    const db = track(
      new DatabaseRouter({
        primary: primaryUrl,
        replicas: [replicaUrl],
        readYourWrites: false,
        healthCheckInterval: 0,
        pool: { poolSize: 1, maxOverflow: 1 },
      }),
    );
    const ctx: DbContext = {};
    await db.write('SELECT 1', [], ctx);
    const r = await db.read('SELECT pg_is_in_recovery() AS r', [], ctx);
    expect(r.rows[0]?.r).toBe(true);
  });

  it('a dead replica costs no read: reads go to the primary and stats show it unhealthy', async () => {
    const dead = `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
    const db = track(
      new DatabaseRouter({
        primary: primaryUrl,
        replicas: [dead, replicaUrl],
        healthCheckInterval: 0,
        pool: { poolSize: 1, maxOverflow: 2, poolTimeout: 2 },
      }),
    );
    const roles: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await db.read('SELECT pg_is_in_recovery() AS r', []);
      roles.push(r.node.role);
      expect(r.rows).toHaveLength(1);
    }
    const st = db.stats();
    expect(st.nodes[1]?.healthy).toBe(false);
    expect(st.nodes[2]?.healthy).toBe(true);
    // With the dead one ejected, reads land on the live replica.
    expect(roles.slice(-3)).toEqual(['replica', 'replica', 'replica']);
  });

  it('rejects a bad readYourWrites mode with a ValidationError', () => {
    expect(
      () =>
        new DatabaseRouter({
          primary: primaryUrl,
          replicas: [],
          readYourWrites: { mode: 'sticky' } as never,
        }),
    ).toThrow(/readYourWrites/);
  });
});

describe('db API contract: replica lag and outage (private primary + replica)', () => {
  let pgh: PostgresHandle;
  let rep: string;

  beforeAll(async () => {
    pgh = await startPostgres();
    rep = pgh.replicaUrls[0] as string;
    await once(pgh.primaryUrl, 'ALTER SYSTEM SET synchronous_commit = on');
    await once(pgh.primaryUrl, 'SELECT pg_reload_conf()');
    await once(pgh.primaryUrl, 'CREATE TABLE kv (id int PRIMARY KEY, v int NOT NULL)');
    await once(pgh.primaryUrl, 'INSERT INTO kv VALUES (1, 0)');
    await until('replica has kv', () => replicaHas(rep, 'kv', 1));
  }, 120_000);

  afterAll(async () => {
    await pgh?.stop();
  });

  it('lsn mode never returns a stale row while replay is paused; replica serves again after', async () => {
    const db = track(
      new DatabaseRouter({
        primary: pgh.primaryUrl,
        replicas: pgh.replicaUrls,
        readYourWrites: { mode: 'lsn' },
        healthCheckInterval: 0.2,
        pool: { poolSize: 1, maxOverflow: 2 },
      }),
    );
    const ctx: DbContext = {};
    const served = { replica: 0, primary: 0 };
    let stale = 0;
    const step = async (i: number) => {
      await db.write('UPDATE kv SET v = $1 WHERE id = 1', [i], ctx);
      const r = await db.read<{ v: number }>('SELECT v FROM kv WHERE id = 1', [], ctx);
      if (r.rows[0]?.v !== i) stale++;
      served[r.node.role]++;
    };
    for (let i = 1; i <= 50; i++) await step(i);
    const beforePause = { ...served };
    expect(beforePause.replica).toBeGreaterThan(0);

    await once(rep, 'SELECT pg_wal_replay_pause()');
    await until('paused', async () => {
      const r = await once<{ p: boolean }>(
        rep,
        "SELECT pg_get_wal_replay_pause_state() = 'paused' AS p",
      );
      return r[0]?.p === true;
    });
    for (let i = 51; i <= 100; i++) await step(i);
    expect(served.replica).toBe(beforePause.replica); // nothing stale came from the replica
    await once(rep, 'SELECT pg_wal_replay_resume()');

    await until('replica caught up', async () => {
      const [p] = await once<{ lsn: string }>(
        pgh.primaryUrl,
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      );
      const [r] = await once<{ ok: boolean }>(
        rep,
        'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok',
        [p?.lsn],
      );
      return r?.ok === true;
    });
    const beforeAfter = served.replica;
    for (let i = 101; i <= 150; i++) await step(i);
    expect(stale).toBe(0);
    expect(served.replica).toBeGreaterThan(beforeAfter);
  });

  it('stopping the replica loses no read; bringing it back returns reads to it', async () => {
    const db = track(
      new DatabaseRouter({
        primary: pgh.primaryUrl,
        replicas: pgh.replicaUrls,
        healthCheckInterval: 0.2,
        pool: { poolSize: 1, maxOverflow: 2, poolTimeout: 3 },
      }),
    );
    for (let i = 0; i < 5; i++)
      expect((await db.read('SELECT 1 AS one', [])).node.role).toBe('replica');
    await pgh.stopReplica();
    try {
      for (let i = 0; i < 20; i++) {
        const r = await db.read<{ one: number }>('SELECT 1 AS one', []);
        expect(r.rows[0]?.one).toBe(1);
      }
      expect(db.stats().replicas[0]?.healthy).toBe(false);
    } finally {
      await pgh.startReplica();
    }
    await until(
      'reads back on the replica',
      async () => (await db.read('SELECT 1', [])).node.role === 'replica',
      30_000,
    );
    expect(db.stats().replicas[0]?.healthy).toBe(true);
  });
});
