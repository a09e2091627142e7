/**
 * Defect 10 (issue 13): a read-your-writes ctx is input like any other. A position from the
 * future (a restore, a timeline switch, a forged ctx) or a write time in the future must not
 * pin reads to the primary outside `primaryFallbackLimit`; a malformed ctx is a ValidationError.
 * Against the real primary + streaming replica of the test harness.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import type { MetricsSink } from '../../src/core/metrics.js';
import { DatabaseRouter, type DbContext, type DbQueryEvent } from '../../src/db/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { caughtUp, sql, waitFor } from './helpers.js';

const s = servers();
const primaryUrl = s.pgPrimaryUrl;
const replicaUrl = s.pgReplicaUrls[0] as string;
const t = uniquePrefix('ctx')
  .replace(/[^a-z0-9]/g, '_')
  .replace(/_+$/, '');

const routers: DatabaseRouter[] = [];
function router(opts: Partial<ConstructorParameters<typeof DatabaseRouter>[0]> = {}) {
  const db = new DatabaseRouter({
    primary: primaryUrl,
    replicas: [replicaUrl],
    pool: { poolSize: 2, maxOverflow: 2 },
    healthCheckInterval: 0,
    ...opts,
  });
  routers.push(db);
  const reasons: string[] = [];
  db.on('query', (e: DbQueryEvent) => {
    if (e.kind === 'read') reasons.push(`${e.node.role}:${e.reason}`);
  });
  return { db, reasons };
}

beforeAll(async () => {
  await sql(primaryUrl, `CREATE TABLE ${t} (id int PRIMARY KEY, v int)`);
  await sql(primaryUrl, `INSERT INTO ${t} VALUES (1, 1)`);
  await caughtUp(primaryUrl, replicaUrl);
});

afterAll(async () => {
  await Promise.all(routers.map((r) => r.close()));
});

describe('read-your-writes ctx from the future (lsn mode)', () => {
  it('drops a position past the primary and reads from the replica again', async () => {
    let discarded = 0;
    const metrics = {
      counter: (name: string) => ({
        inc: () => {
          if (name === 'db_ctx_discarded_total') discarded++;
        },
      }),
      histogram: () => ({ observe: () => {} }),
      gauge: () => ({ set: () => {}, inc: () => {}, dec: () => {} }),
    } as unknown as MetricsSink;
    const { db, reasons } = router({ readYourWrites: { mode: 'lsn' }, metrics });
    // What a restore to an older backup or a forged cookie leaves in a session.
    const ctx: DbContext = JSON.parse('{"lsn":"FFFFFFFF/FFFFFFFF","user":"kept"}');
    const first = await db.read<{ standby: boolean }>(
      'SELECT pg_is_in_recovery() AS standby',
      [],
      ctx,
    );
    expect(first.rows[0]?.standby).toBe(true);
    expect(ctx.lsn).toBeUndefined();
    expect(ctx.user).toBe('kept');
    expect(discarded).toBe(1);
    for (let i = 0; i < 20; i++) await db.read('SELECT 1', [], ctx);
    expect(reasons.every((r) => r === 'replica:replica')).toBe(true);
    // A write gives the ctx a real position again, which reads honour.
    await db.write(`UPDATE ${t} SET v = v + 1 WHERE id = 1`, [], ctx);
    expect(ctx.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const [row] = await sql<{ v: number }>(primaryUrl, `SELECT v FROM ${t} WHERE id = 1`);
    const own = await db.read<{ v: number }>(`SELECT v FROM ${t} WHERE id = 1`, [], ctx);
    expect(own.rows[0]?.v).toBe(row?.v);
  });

  it('takes a write time in the future as now: it ages like any other', async () => {
    const { db } = router({ readYourWrites: { mode: 'lsn', maxAge: 0.5 } });
    // A legitimate position (the primary's now), with a forged write time a century ahead.
    const [pos] = await sql<{ lsn: string }>(
      primaryUrl,
      'SELECT pg_current_wal_insert_lsn()::text AS lsn',
    );
    const ctx: DbContext = { lsn: pos?.lsn, lastWriteAtMs: Date.now() + 100 * 365 * 86_400_000 };
    await db.read('SELECT 1', [], ctx);
    expect(ctx.lastWriteAtMs).toBeLessThanOrEqual(Date.now());
  });
});

describe('read-your-writes ctx from the future (window mode)', () => {
  it('pins a forged future write time for one window at most, then reads the replica', async () => {
    const { db, reasons } = router({ readYourWrites: { mode: 'window', seconds: 0.3 } });
    const ctx: DbContext = { lastWriteAtMs: Date.now() + 10 * 365 * 86_400_000 };
    expect((await db.read('SELECT 1', [], ctx)).node.role).toBe('primary');
    await waitFor(
      'ctx aged',
      async () => (await db.read('SELECT 1', [], ctx)).node.role === 'replica',
      5000,
    );
    expect(reasons[0]).toBe('primary:window');
    expect(reasons.at(-1)).toBe('replica:replica');
    expect(ctx.lastWriteAtMs).toBeLessThanOrEqual(Date.now());
  });
});

describe('malformed ctx', () => {
  it('is a ValidationError naming the field, before any query', async () => {
    const { db, reasons } = router({ readYourWrites: { mode: 'lsn' } });
    const bad: [unknown, string][] = [
      [{ lsn: 'not-an-lsn' }, 'ctx.lsn'],
      [{ lsn: 42 }, 'ctx.lsn'],
      [{ lsn: '0/1; DROP TABLE x' }, 'ctx.lsn'],
      [{ lastWriteAtMs: Number.NaN }, 'ctx.lastWriteAtMs'],
      [{ lastWriteAtMs: Number.POSITIVE_INFINITY }, 'ctx.lastWriteAtMs'],
      [{ lastWriteAtMs: '1700000000000' }, 'ctx.lastWriteAtMs'],
      [[], 'ctx'],
      ['ctx', 'ctx'],
    ];
    for (const [ctx, option] of bad) {
      const e = await db.read('SELECT 1', [], ctx as DbContext).catch((x: unknown) => x);
      expect(isValidationError(e), JSON.stringify(ctx)).toBe(true);
      expect((e as { option?: string }).option).toBe(option);
      const w = await db.write('SELECT 1', [], ctx as DbContext).catch((x: unknown) => x);
      expect(isValidationError(w)).toBe(true);
    }
    expect(reasons).toEqual([]);
    // Prototype names in a parsed ctx are own data, not inherited positions.
    const proto = JSON.parse('{"__proto__":{"lsn":"FFFFFFFF/0"},"constructor":1}') as DbContext;
    expect((await db.read('SELECT 1', [], proto)).node.role).toBe('replica');
  });

  it('rejects a bad readYourWrites.maxAge or window length as a ValidationError', () => {
    for (const ryw of [
      { mode: 'lsn', maxAge: -1 },
      { mode: 'lsn', maxAge: Number.NaN },
      { mode: 'lsn', maxAge: 1e12 },
      { mode: 'window', seconds: 0 },
      { mode: 'window', seconds: Number.POSITIVE_INFINITY },
    ]) {
      let err: unknown;
      try {
        router({ readYourWrites: ryw as never });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(ryw)).toBe(true);
      expect((err as { option?: string }).option).toMatch(/^readYourWrites\./);
    }
  });
});
