/**
 * The seed's DatabaseRouter: writes to the primary, reads round-robin over replicas, with
 * read-your-writes so a user always sees their own last write even while replicas lag.
 *
 *   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
 *   DATABASE_REPLICA_URLS=postgresql://postgres@127.0.0.1:5433/postgres \
 *   node --import tsx examples/db-router.ts
 *
 * In your project: import { DatabaseRouter } from 'azscale/db'.
 */
import { type DbContext, DatabaseRouter } from '../src/db/index.js';

const primary = process.env.DATABASE_URL;
if (!primary) {
  console.log(
    'set DATABASE_URL (and DATABASE_REPLICA_URLS) to run this example against PostgreSQL',
  );
  process.exit(0);
}

const db = new DatabaseRouter({
  primary,
  replicas: (process.env.DATABASE_REPLICA_URLS ?? '').split(',').filter(Boolean),
  // The seed's QueuePool settings, same names, seconds.
  pool: { poolSize: 20, maxOverflow: 10, poolTimeout: 30, poolRecycle: 3600, prePing: true },
  readYourWrites: { mode: 'lsn' }, // a read with ctx waits for nothing: it goes where the write is visible
  maxReplicaLag: 5, // seconds; a replica further behind is skipped
});

const served: Record<string, number> = {};
db.on('query', (e) => {
  served[e.node.role] = (served[e.node.role] ?? 0) + 1;
});

await db.write(
  'CREATE TABLE IF NOT EXISTS example_users (id serial PRIMARY KEY, name text NOT NULL)',
);

// Keep one ctx per user or session (e.g. in the session) and pass it to their queries.
const ctx: DbContext = {};
const name = `user-${Date.now()}`;
const inserted = await db.write<{ id: number }>(
  'INSERT INTO example_users (name) VALUES ($1) RETURNING id',
  [name],
  ctx,
);
const id = inserted.rows[0]!.id;
const mine = await db.read<{ name: string }>(
  'SELECT name FROM example_users WHERE id = $1',
  [id],
  ctx,
);
console.log(`read my own write: ${mine.rows[0]?.name === name}`);

// Reads without a ctx spread over the replicas and may be a little stale (a replica may not have
// replayed even the CREATE TABLE above yet), so use them for data where that is fine.
for (let i = 0; i < 10; i++) await db.read('SELECT pg_is_in_recovery() AS on_replica');
console.log('queries served by role:', served);
await db.close();
if (mine.rows[0]?.name !== name) process.exitCode = 1;
