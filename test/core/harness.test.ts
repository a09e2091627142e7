import { describe, expect, it } from 'vitest';
import { servers } from '../harness/env.js';
import { Redis, Cluster } from 'ioredis';
import pg from 'pg';

describe('test harness servers', () => {
  it('standalone redis answers PING', async () => {
    const r = new Redis(servers().redisUrl);
    try {
      expect(await r.ping()).toBe('PONG');
    } finally {
      r.disconnect();
    }
  });

  it('cluster has 3 masters covering every slot', async () => {
    const c = new Cluster(servers().clusterNodes);
    try {
      const info = await c.cluster('INFO');
      expect(info).toContain('cluster_state:ok');
      expect(c.nodes('master')).toHaveLength(3);
    } finally {
      c.disconnect();
    }
  });

  it('postgres replica streams from the primary', async () => {
    const s = servers();
    const primary = new pg.Client({ connectionString: s.pgPrimaryUrl });
    const replica = new pg.Client({ connectionString: s.pgReplicaUrls[0] });
    await primary.connect();
    await replica.connect();
    try {
      const r1 = await primary.query('select pg_is_in_recovery() as r');
      const r2 = await replica.query('select pg_is_in_recovery() as r');
      expect(r1.rows[0].r).toBe(false);
      expect(r2.rows[0].r).toBe(true);
      const table = `harness_${Date.now()}`;
      await primary.query(`create table ${table} (v int)`);
      await primary.query(`insert into ${table} values (42)`);
      const lsn = (await primary.query('select pg_current_wal_lsn()::text as l')).rows[0].l;
      for (let i = 0; i < 100; i++) {
        const ok = await replica.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as ok', [
          lsn,
        ]);
        if (ok.rows[0].ok) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const got = await replica.query(`select v from ${table}`);
      expect(got.rows).toEqual([{ v: 42 }]);
      await primary.query(`drop table ${table}`);
    } finally {
      await primary.end();
      await replica.end();
    }
  });
});
