import { describe, expect, it } from 'vitest';
import { compareWalLsn, isWalLsn, isWriteSql } from '../../src/db/index.js';

describe('isWriteSql', () => {
  it('flags statements that write', () => {
    for (const s of [
      'INSERT INTO t VALUES (1)',
      'update t set a = 1',
      ' \n\tDELETE FROM t',
      '/* hint */ -- line\nMERGE INTO t USING s ON true WHEN MATCHED THEN DELETE',
      '(INSERT INTO t VALUES (1))',
      'CREATE INDEX ON t (a)',
      'drop table t',
      'ALTER TABLE t ADD c int',
      'TRUNCATE t',
      'COPY t FROM STDIN',
      'VACUUM t',
      'GRANT SELECT ON t TO x',
      'LOCK TABLE t',
      'CALL p()',
      'DO $$ BEGIN END $$',
      'REFRESH MATERIALIZED VIEW v',
      'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d',
      'WITH d AS MATERIALIZED (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d',
      'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x',
      'SELECT * FROM t WHERE id = 1 FOR UPDATE',
      'select * from t for no key update',
      'SELECT * FROM t FOR SHARE',
      "SELECT nextval('s')",
      'EXPLAIN ANALYZE DELETE FROM t',
      'EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1',
    ]) {
      expect(isWriteSql(s), s).toBe(true);
    }
  });

  it('lets reads through', () => {
    for (const s of [
      'SELECT 1',
      'select updated_at, deleted from t',
      "SELECT * FROM t WHERE note = 'insert'",
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'TABLE t',
      'VALUES (1), (2)',
      'SHOW server_version',
      'EXPLAIN SELECT 1',
      'EXPLAIN DELETE FROM t',
      '(SELECT 1) UNION (SELECT 2)',
      'SELECT pg_last_wal_replay_lsn()',
    ]) {
      expect(isWriteSql(s), s).toBe(false);
    }
  });
});

describe('WAL positions', () => {
  it('parses and compares pg_lsn text by value', () => {
    expect(isWalLsn('0/3000148')).toBe(true);
    expect(isWalLsn('16/B374D848')).toBe(true);
    expect(isWalLsn('x/1')).toBe(false);
    expect(isWalLsn(42)).toBe(false);
    expect(compareWalLsn('0/3000148', '0/3000148')).toBe(0);
    expect(compareWalLsn('0/9', '0/10')).toBeLessThan(0); // hex, not text order
    expect(compareWalLsn('1/0', '0/FFFFFFFF')).toBeGreaterThan(0);
    expect(compareWalLsn('A/1', '9/FFFFFFFF')).toBeGreaterThan(0);
  });
});
