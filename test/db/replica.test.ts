/**
 * Destructive proofs against a private PostgreSQL primary + streaming replica (started here, so
 * pausing replay or stopping the replica disturbs no other test).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseRouter, type DbContext, type DbQueryEvent } from '../../src/db/index.js';
import { type PostgresHandle, startPostgres } from '../harness/env.js';
import { caughtUp, sql, waitFor } from './helpers.js';

let pgh: PostgresHandle;
let replicaUrl: string;

beforeAll(async () => {
  pgh = await startPostgres();
  replicaUrl = pgh.replicaUrls[0] as string;
  // The harness runs with synchronous_commit=off for speed, which holds WAL back from the replica
  // for up to wal_writer_delay; the server default (on) ships each commit at once.
  await sql(pgh.primaryUrl, 'ALTER SYSTEM SET synchronous_commit = on');
  await sql(pgh.primaryUrl, 'SELECT pg_reload_conf()');
  await sql(pgh.primaryUrl, 'CREATE TABLE kv (id int PRIMARY KEY, v int NOT NULL)');
  await sql(pgh.primaryUrl, 'INSERT INTO kv SELECT g, 0 FROM generate_series(0, 9) g');
  await caughtUp(pgh.primaryUrl, replicaUrl);
}, 120_000);

afterAll(async () => {
  await pgh?.stop();
});

async function setReplay(paused: boolean): Promise<void> {
  const c = new pg.Client({ connectionString: replicaUrl });
  await c.connect();
  try {
    if (paused) {
      await c.query('SELECT pg_wal_replay_pause()');
      await waitFor('replay paused', async () => {
        const r = await c.query("SELECT pg_get_wal_replay_pause_state() = 'paused' AS p");
        return r.rows[0]?.p === true;
      });
    } else {
      await c.query('SELECT pg_wal_replay_resume()');
    }
  } finally {
    await c.end();
  }
}

describe('lsn read-your-writes while the replica lags', () => {
  it('1000 write-then-read iterations: never stale; replica reads resume after catch-up', async () => {
    const db = new DatabaseRouter({
      primary: pgh.primaryUrl,
      replicas: pgh.replicaUrls,
      readYourWrites: { mode: 'lsn' },
      healthCheckInterval: 0.2,
      pool: { poolSize: 2, maxOverflow: 4 },
    });
    try {
      const users = 10;
      // Each user's ctx lives in "the session": serialized to JSON between requests.
      const sessions: string[] = Array.from({ length: users }, () => '{}');
      const last: number[] = Array.from({ length: users }, () => 0);
      type Phase = 'before' | 'paused' | 'after';
      const counts: Record<Phase, { own: Record<string, number>; other: Record<string, number> }> =
        {
          before: { own: {}, other: {} },
          paused: { own: {}, other: {} },
          after: { own: {}, other: {} },
        };
      const bump = (m: Record<string, number>, k: string) => {
        m[k] = (m[k] ?? 0) + 1;
      };
      let stale = 0;
      let phase: Phase = 'before';
      for (let i = 1; i <= 1000; i++) {
        if (i === 301) {
          await setReplay(true);
          phase = 'paused';
        }
        if (i === 651) {
          await setReplay(false);
          phase = 'after';
        }
        // Request 1: user u writes, then reads back their own row.
        const u = i % users;
        let ctx = JSON.parse(sessions[u] as string) as DbContext;
        await db.write('UPDATE kv SET v = $1 WHERE id = $2', [i, u], ctx);
        sessions[u] = JSON.stringify(ctx);
        ctx = JSON.parse(sessions[u] as string) as DbContext;
        last[u] = i;
        const own = await db.read<{ v: number }>('SELECT v FROM kv WHERE id = $1', [u], ctx);
        if (own.rows[0]?.v !== i) stale++;
        bump(counts[phase].own, own.node.role);
        // Request 2: another user, whose last write was a few requests ago, reads their row.
        const o = (i + 5) % users;
        const octx = JSON.parse(sessions[o] as string) as DbContext;
        const other = await db.read<{ v: number }>('SELECT v FROM kv WHERE id = $1', [o], octx);
        if (other.rows[0]?.v !== last[o]) stale++;
        bump(counts[phase].other, other.node.role);
      }
      expect(stale).toBe(0);
      // While replay was paused, no read of a row written during the pause came from the replica.
      expect(counts.paused.own.replica ?? 0).toBe(0);
      // Before the pause and after catch-up, the replica served reads.
      expect(counts.before.other.replica ?? 0).toBeGreaterThan(100);
      expect(counts.after.other.replica ?? 0).toBeGreaterThan(100);
      expect((counts.after.own.replica ?? 0) + (counts.after.other.replica ?? 0)).toBeGreaterThan(
        150,
      );
      console.log('[db] lsn read counts by phase and node role:', JSON.stringify(counts));
    } finally {
      await setReplay(false);
      await db.close();
    }
  }, 120_000);

  it('maxAge: a position the replica has not replayed after maxAge reads the primary only within primaryFallbackLimit', async () => {
    const strict = new DatabaseRouter({
      primary: pgh.primaryUrl,
      replicas: pgh.replicaUrls,
      readYourWrites: { mode: 'lsn', maxAge: 0.5 },
      primaryFallbackLimit: 0,
      healthCheckInterval: 0,
    });
    const limited = new DatabaseRouter({
      primary: pgh.primaryUrl,
      replicas: pgh.replicaUrls,
      readYourWrites: { mode: 'lsn', maxAge: 0.5 },
      primaryFallbackLimit: 1,
      healthCheckInterval: 0,
    });
    const reasons: string[] = [];
    limited.on('query', (e) => {
      if (e.kind === 'read') reasons.push(`${e.node.role}:${e.reason}`);
    });
    try {
      await setReplay(true);
      const ctx: DbContext = {};
      await strict.write('UPDATE kv SET v = v + 1 WHERE id = 3', [], ctx);
      const [row] = await sql<{ v: number }>(pgh.primaryUrl, 'SELECT v FROM kv WHERE id = 3');
      // Fresh: the primary serves it, outside the fallback limit (which is 0 here).
      expect((await strict.read('SELECT v FROM kv WHERE id = 3', [], ctx)).node.role).toBe(
        'primary',
      );
      await new Promise((r) => setTimeout(r, 600));
      // Aged and still not replayed: only as a fallback read, which this router does not allow.
      const refused = await strict.read('SELECT 1', [], ctx).catch((e: unknown) => e);
      expect((refused as { context?: { option?: string } }).context?.option).toBe(
        'primaryFallbackLimit',
      );
      // With a fallback budget it reads the primary (never stale), counted as a fallback.
      const r = await limited.read<{ v: number }>('SELECT v FROM kv WHERE id = 3', [], { ...ctx });
      expect(r.rows[0]?.v).toBe(row?.v);
      expect(reasons).toEqual(['primary:fallback']);
    } finally {
      await setReplay(false);
      await Promise.all([strict.close(), limited.close()]);
    }
  }, 60_000);

  it('maxReplicaLag: a lagging replica is skipped until it catches up', async () => {
    const db = new DatabaseRouter({
      primary: pgh.primaryUrl,
      replicas: pgh.replicaUrls,
      maxReplicaLag: 0.3,
      healthCheckInterval: 0.1,
      pool: { poolSize: 1, maxOverflow: 2 },
    });
    try {
      await waitFor('first check', () => db.stats().replicas[0]?.lag !== null);
      expect((await db.read('SELECT 1')).node.name).toBe('replica-0');
      await setReplay(true);
      await db.write('UPDATE kv SET v = v + 1 WHERE id = 0');
      await waitFor('lag seen', () => (db.stats().replicas[0]?.lag ?? 0) > 0.3, 10_000);
      const events: DbQueryEvent[] = [];
      db.on('query', (e) => events.push(e));
      const r = await db.read('SELECT pg_is_in_recovery() AS standby');
      expect(r.node.name).toBe('primary');
      expect(events[0]?.reason).toBe('fallback');
      await setReplay(false);
      await waitFor('lag gone', () => (db.stats().replicas[0]?.lag ?? 1) <= 0.3, 10_000);
      expect((await db.read('SELECT 1')).node.name).toBe('replica-0');
    } finally {
      await setReplay(false);
      await db.close();
    }
  }, 60_000);
});

describe('replica stopped mid-run', () => {
  it('loses no read while the replica is down, and reads return to it when it is back', async () => {
    const db = new DatabaseRouter({
      primary: pgh.primaryUrl,
      replicas: pgh.replicaUrls,
      healthCheckInterval: 0.2,
      failTimeout: 0.5,
      pool: { poolSize: 2, maxOverflow: 4, poolTimeout: 5 },
    });
    const ejections: string[] = [];
    const restores: string[] = [];
    db.on('eject', (e) => ejections.push(e.node.name));
    db.on('restore', (e) => restores.push(e.node.name));
    let phase: 'up' | 'down' | 'back' = 'up';
    const served = {
      up: { replica: 0, primary: 0 },
      down: { replica: 0, primary: 0 },
      back: { replica: 0, primary: 0 },
    };
    const errors: unknown[] = [];
    let stop = false;
    let reads = 0;
    const lane = async () => {
      // Bounded in count and time.
      while (!stop && reads < 200_000) {
        reads++;
        try {
          const r = await db.read<{ n: number }>('SELECT $1::int AS n', [reads]);
          served[phase][r.node.role]++;
        } catch (e) {
          errors.push(e);
        }
      }
    };
    try {
      const lanes = Array.from({ length: 4 }, lane);
      await waitFor('replica reads', () => served.up.replica > 200);
      phase = 'down';
      await pgh.stopReplica();
      const downAt = served.down.primary;
      await waitFor('reads on the primary', () => served.down.primary > downAt + 300);
      phase = 'back';
      await pgh.startReplica();
      const backAt = served.back.replica;
      await waitFor('reads back on the replica', () => served.back.replica > backAt + 200, 30_000);
      stop = true;
      await Promise.all(lanes);
      expect(errors).toEqual([]);
      expect(ejections).toContain('replica-0');
      expect(restores).toContain('replica-0');
      expect(db.stats().replicas[0]?.healthy).toBe(true);
      console.log(
        '[db] reads served while the replica was up / down / back:',
        JSON.stringify(served),
      );
    } finally {
      stop = true;
      await pgh.startReplica();
      await db.close();
    }
  }, 90_000);
});
