/**
 * db: reads through DatabaseRouter vs the same statement on a raw pg.Pool on the same replica, 10
 * callers at once (target <= 1.05x); writes likewise on the primary; and, as the limit, the same
 * primary-key SELECT driven by `pgbench -S` (C, libpq) when pgbench is installed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import pg from 'pg';
import { DatabaseRouter } from '../src/db/index.js';
import { type BenchRow, type BenchSuite, type Measurement, compare, measure } from './lib.js';

const run = promisify(execFile);
const PGBENCH_DIRS = [
  '/usr/lib/postgresql/15/bin',
  '/usr/lib/postgresql/16/bin',
  '/usr/lib/postgresql/17/bin',
];
const CONCURRENCY = 10;
const SCALE = 1; // pgbench scale: 100 000 accounts
const ACCOUNTS = 100_000 * SCALE;
const SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = $1';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function pgbenchPath(): string | undefined {
  for (const d of PGBENCH_DIRS) if (existsSync(`${d}/pgbench`)) return `${d}/pgbench`;
  return undefined;
}

async function waitForReplica(primaryUrl: string, replicaUrl: string): Promise<void> {
  const p = new pg.Client({ connectionString: primaryUrl });
  const r = new pg.Client({ connectionString: replicaUrl });
  await Promise.all([p.connect(), r.connect()]);
  try {
    const lsn = (await p.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]?.l;
    for (let i = 0; i < 600; i++) {
      const ok = (await r.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]))
        .rows[0]?.ok;
      if (ok) return;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('replica did not catch up with pgbench_accounts within 60 s');
  } finally {
    await Promise.all([p.end(), r.end()]);
  }
}

/** Makes sure pgbench_accounts exists on the primary (pgbench -i, or plain SQL without pgbench). */
async function ensureAccounts(primaryUrl: string, pgbench: string | undefined): Promise<void> {
  const c = new pg.Client({ connectionString: primaryUrl });
  await c.connect();
  try {
    const have = await c.query("SELECT to_regclass('pgbench_accounts') IS NOT NULL AS t");
    if (!have.rows[0]?.t) {
      if (pgbench) {
        const args = ['-i', '-s', String(SCALE), '-q', primaryUrl];
        await (isRoot
          ? run('runuser', ['-u', 'postgres', '--', pgbench, ...args])
          : run(pgbench, args));
      } else {
        await c.query(
          'CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))',
        );
        await c.query(
          `INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, ${ACCOUNTS}) g`,
        );
      }
    }
    // Settled pages (hint bits, visibility map) before timing, so neither side pays for them.
    await c.query('VACUUM (FREEZE, ANALYZE) pgbench_accounts');
  } finally {
    await c.end();
  }
}

/** pgbench -S on the replica: tps and mean latency as a Measurement. */
async function pgbenchSelect(pgbench: string, url: string, seconds: number): Promise<Measurement> {
  const args = [
    '-S',
    '-n',
    '-M',
    'extended',
    '-c',
    String(CONCURRENCY),
    '-j',
    '2',
    '-T',
    String(seconds),
    url,
  ];
  const { stdout } = await (isRoot
    ? run('runuser', ['-u', 'postgres', '--', pgbench, ...args])
    : run(pgbench, args));
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const lat = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`could not read pgbench output:\n${stdout}`);
  return { opsPerSec: tps, meanMs: 1000 / tps, p50Ms: lat, p99Ms: lat, iterations: tx };
}

const suite: BenchSuite = async (ctx) => {
  const replicaUrl = ctx.pgReplicaUrls[0];
  if (!replicaUrl) throw new Error('db bench needs a replica (pgReplicaUrls is empty)');
  const pgbench = pgbenchPath();
  await ensureAccounts(ctx.pgPrimaryUrl, pgbench);
  await waitForReplica(ctx.pgPrimaryUrl, replicaUrl);

  // Same pool size on both sides; health checks on (as in production) but infrequent.
  const db = new DatabaseRouter({
    primary: ctx.pgPrimaryUrl,
    replicas: [replicaUrl],
    pool: { poolSize: CONCURRENCY, maxOverflow: 0 },
  });
  const rawReplica = new pg.Pool({ connectionString: replicaUrl, max: CONCURRENCY });
  const rawPrimary = new pg.Pool({ connectionString: ctx.pgPrimaryUrl, max: CONCURRENCY });
  // An idle client whose server goes away must not crash the bench.
  rawReplica.on('error', () => {});
  rawPrimary.on('error', () => {});
  await db.write('CREATE TABLE IF NOT EXISTS azs_bench_kv (id int PRIMARY KEY, v int)');
  await db.write(
    'INSERT INTO azs_bench_kv SELECT g, 0 FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING',
  );
  let n = 0;
  const aid = () => (n = (n * 7919 + 13) % ACCOUNTS) + 1;
  const rows: BenchRow[] = [];
  try {
    // Untimed: open every connection on both sides and touch the table.
    await measure(() => db.read(SELECT, [aid()]), {
      iterations: 2000,
      concurrency: CONCURRENCY,
      warmup: 0,
    });
    await measure(() => rawReplica.query(SELECT, [aid()]), {
      iterations: 2000,
      concurrency: CONCURRENCY,
      warmup: 0,
    });
    rows.push(
      await compare({
        group: 'db',
        case: `read pk via router, ${CONCURRENCY} concurrent`,
        ours: () => db.read(SELECT, [aid()]),
        theirsLabel: 'raw pg.Pool on the replica',
        theirs: () => rawReplica.query(SELECT, [aid()]),
        iterations: 6000,
        concurrency: CONCURRENCY,
        rounds: 7,
        maxRatio: 1.05,
      }),
    );
    rows.push(
      await compare({
        group: 'db',
        case: `write via router, ${CONCURRENCY} concurrent`,
        ours: () =>
          db.write('UPDATE azs_bench_kv SET v = v + 1 WHERE id = $1', [(aid() % 1000) + 1]),
        theirsLabel: 'raw pg.Pool on the primary',
        theirs: () =>
          rawPrimary.query('UPDATE azs_bench_kv SET v = v + 1 WHERE id = $1', [(aid() % 1000) + 1]),
        iterations: 3000,
        concurrency: CONCURRENCY,
        rounds: 5,
        maxRatio: 1.05,
      }),
    );
    if (pgbench) {
      let ours: Measurement | undefined;
      for (let r = 0; r < 3; r++) {
        const m = await measure(() => db.read(SELECT, [aid()]), {
          iterations: 6000,
          concurrency: CONCURRENCY,
        });
        if (!ours || m.opsPerSec > ours.opsPerSec) ours = m;
      }
      if (!ours) throw new Error('unreachable');
      const theirs = await pgbenchSelect(pgbench, replicaUrl, 5);
      rows.push({
        group: 'db',
        case: `read pk via router, ${CONCURRENCY} concurrent`,
        ours,
        theirsLabel: 'pgbench -S -M extended (libpq, the limit)',
        theirs,
        ratio: theirs.opsPerSec / ours.opsPerSec,
        target: 'reference',
      });
    }
  } finally {
    await Promise.allSettled([db.close(), rawReplica.end(), rawPrimary.end()]);
  }
  return rows;
};
export default suite;
