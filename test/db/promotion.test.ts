/**
 * PostgreSQL failover against a private primary + streaming replica (started here, so stopping
 * the primary and promoting the replica disturbs no other test): writes find the promoted
 * standby, a ctx from before the promotion reads correctly and is not pinned to the old
 * timeline, and no write reaches a server in recovery (the servers' own logs say so).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isBackendUnavailableError, isValidationError } from '../../src/core/errors.js';
import { DatabaseRouter, type DbContext, compareWalLsn } from '../../src/db/index.js';
import { type PostgresHandle, startPostgres } from '../harness/env.js';
import { caughtUp, sql, waitFor } from './helpers.js';

let pgh: PostgresHandle;
let a: string;
let b: string;

/** Statements a server refused because it is in recovery (SQLSTATE 25006 is logged as ERROR). */
function refusedWrites(log: string): number {
  return (
    readFileSync(log, 'utf8').split('cannot execute INSERT in a read-only transaction').length - 1
  );
}

beforeAll(async () => {
  pgh = await startPostgres();
  a = pgh.primaryUrl;
  b = pgh.replicaUrls[0] as string;
  await sql(a, 'ALTER SYSTEM SET synchronous_commit = on');
  await sql(a, 'SELECT pg_reload_conf()');
  await sql(a, 'CREATE TABLE ev (id int PRIMARY KEY, at text NOT NULL)');
  await caughtUp(a, b);
}, 120_000);

afterAll(async () => {
  await pgh?.stop();
});

describe('primary candidates: input', () => {
  const bad: [string, Record<string, unknown>, string][] = [
    ['primaries not an array', { primaries: 'postgresql://h/db' }, 'primaries'],
    ['neither primary nor primaries', { primaries: [] }, 'primary'],
    ['a number in a primary list', { primary: ['postgresql://h/db', 5] }, 'primary[1]'],
    ['a non-URL string in primaries', { primaries: ['mysql://h/db'] }, 'primaries[0]'],
    ['__proto__ as a candidate', { primaries: ['__proto__'] }, 'primaries[0]'],
  ];
  it.each(bad)('%s: ValidationError naming the option', (_, options, option) => {
    let err: unknown;
    try {
      new DatabaseRouter({ healthCheckInterval: 0, ...options } as never);
    } catch (e) {
      err = e;
    }
    expect(isValidationError(err)).toBe(true);
    expect((err as { option: string }).option).toBe(option);
  });

  it('names candidates primary-N, reports them in stats, and rejects a malformed ctx.timeline', async () => {
    const db = new DatabaseRouter({ primary: [a, b], healthCheckInterval: 0 });
    try {
      expect(db.stats().candidates.map((c) => c.name)).toEqual(['primary-0', 'primary-1']);
      for (const timeline of [0, -1, 1.5, Number.NaN, '2']) {
        const err = await db
          .read('SELECT 1', undefined, { lsn: '0/1', timeline } as never)
          .catch((e: unknown) => e);
        expect(isValidationError(err)).toBe(true);
        expect((err as { option: string }).option).toBe('ctx.timeline');
      }
    } finally {
      await db.close();
    }
  });
});

describe('a standby configured as the primary', () => {
  it('a write refused with 25006 is a typed error, not retried; later writes are stopped before they are sent', async () => {
    const db = new DatabaseRouter({ primary: b, healthCheckInterval: 0, pool: { poolSize: 1 } });
    try {
      const before = refusedWrites(pgh.logs.replica);
      const e1 = await db.write("INSERT INTO ev VALUES (-1, 'standby')").catch((e: unknown) => e);
      expect(isBackendUnavailableError(e1)).toBe(true);
      expect((e1 as { context: Record<string, unknown> }).context).toMatchObject({
        sqlState: '25006',
        readOnly: true,
      });
      // Once: the router did not send it again.
      await waitFor('the refusal in the log', () => refusedWrites(pgh.logs.replica) === before + 1);
      const e2 = await db.write("INSERT INTO ev VALUES (-2, 'standby')").catch((e: unknown) => e);
      expect(isBackendUnavailableError(e2)).toBe(true);
      expect((e2 as { context: Record<string, unknown> }).context).toMatchObject({
        readOnly: true,
        connect: true,
      });
      // The second write was stopped by the pg_is_in_recovery() check: the server saw none.
      await new Promise((r) => setTimeout(r, 300));
      expect(refusedWrites(pgh.logs.replica)).toBe(before + 1);
    } finally {
      await db.close();
    }
  });
});

describe('primary promotion', () => {
  it('writes resume on the promoted standby; ctx from before reads correctly; no write went to a server in recovery', async () => {
    const db = new DatabaseRouter({
      primaries: [a, b],
      replicas: [b],
      readYourWrites: { mode: 'lsn' },
      healthCheckInterval: 0.2,
      healthCheckTimeout: 2,
      pool: { poolSize: 2, maxOverflow: 2, poolTimeout: 5 },
    });
    const switches: string[] = [];
    db.on('primary', (e) => switches.push(`${e.from.name}->${e.to.name}`));
    const writesOn: Record<string, number> = {};
    let lastOnA = 0;
    let firstOnB = 0;
    db.on('query', (e) => {
      if (e.kind !== 'write' || !e.ok) return;
      writesOn[e.node.name] = (writesOn[e.node.name] ?? 0) + 1;
      if (e.node.name === 'primary-0') lastOnA = performance.now();
      else if (firstOnB === 0) firstOnB = performance.now();
    });
    const refusedBefore = refusedWrites(pgh.logs.replica);
    try {
      // A ctx whose write is replicated, and one holding a position no server will reach on
      // this timeline (as a write the old primary took and never shipped).
      const ctx: DbContext = {};
      await db.write("INSERT INTO ev VALUES (0, 'before')", undefined, ctx);
      expect(ctx.timeline).toBe(1);
      const saved = JSON.stringify(ctx);
      const ahead: DbContext = { lsn: 'FF/0', timeline: 1, lastWriteAtMs: Date.now() };

      // Continuous writes, one at a time, as a request handler would send them.
      const acked: number[] = [];
      const errors: unknown[] = [];
      let running = true;
      let id = 1;
      const writer = (async () => {
        while (running) {
          const n = id++;
          try {
            await db.write('INSERT INTO ev VALUES ($1, $2)', [n, 'loop']);
            acked.push(n);
          } catch (e) {
            errors.push(e);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      })();
      await waitFor('writes flowing', () => acked.length >= 20, 20_000);
      const stopAt = performance.now();
      await pgh.stopPrimary();
      const stoppedAt = performance.now();
      await pgh.promoteReplica();
      const promotedAt = performance.now();
      await waitFor('a write on the promoted standby', () => firstOnB > 0, 30_000);
      const n0 = acked.length;
      await waitFor('more writes after promotion', () => acked.length >= n0 + 20, 20_000);
      running = false;
      await writer;

      const window = (firstOnB - lastOnA) / 1000;
      const afterPromote = (firstOnB - promotedAt) / 1000;
      console.log(
        `[promotion] last write on the old primary to first on the promoted one: ${window.toFixed(2)} s (pg_ctl stop ${((stoppedAt - stopAt) / 1000).toFixed(2)} s, pg_ctl promote -w ${((promotedAt - stoppedAt) / 1000).toFixed(2)} s); first write ${afterPromote.toFixed(2)} s after promote returned; ${errors.length} failed writes, ${acked.length} acknowledged`,
      );
      expect(afterPromote).toBeLessThan(10);
      // Every failure was typed: the primary was unreachable, or no candidate took writes.
      for (const e of errors) expect(isBackendUnavailableError(e)).toBe(true);
      expect(switches).toEqual(['primary-0->primary-1']);
      expect(db.stats().primary.name).toBe('primary-1');

      // No acknowledged write lost (a fast shutdown ships all WAL to the standby first).
      const rows = await sql<{ id: number }>(b, 'SELECT id FROM ev WHERE id > 0');
      const have = new Set(rows.map((r) => r.id));
      expect(acked.filter((n) => !have.has(n))).toEqual([]);

      // No write reached a server in recovery: the standby refused none while it was one.
      expect(refusedWrites(pgh.logs.replica)).toBe(refusedBefore);
      expect((writesOn['primary-0'] ?? 0) + (writesOn['primary-1'] ?? 0)).toBe(acked.length + 1);

      // The ctx from before the promotion sees its write, and moves to the new timeline.
      const old = JSON.parse(saved) as DbContext;
      const r = await db.read<{ at: string }>('SELECT at FROM ev WHERE id = 0', undefined, old);
      expect(r.rows[0]?.at).toBe('before');
      expect(old.timeline).toBe(2);

      // The ctx ahead of anything reachable is served, and not pinned: its position is now one
      // the new primary has reached.
      const r2 = await db.read<{ n: number }>(
        'SELECT count(*)::int AS n FROM ev',
        undefined,
        ahead,
      );
      expect(r2.rows[0]?.n).toBeGreaterThan(0);
      expect(ahead.timeline).toBe(2);
      const [cur] = await sql<{ lsn: string }>(
        b,
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
      );
      expect(compareWalLsn(ahead.lsn as string, cur?.lsn as string)).toBeLessThanOrEqual(0);

      // A write through the new primary records the new timeline.
      const fresh: DbContext = {};
      await db.write("INSERT INTO ev VALUES (-10, 'after')", undefined, fresh);
      expect(fresh.timeline).toBe(2);
    } finally {
      await db.close();
    }
  }, 90_000);
});
