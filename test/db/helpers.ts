import pg from 'pg';
import { freePort } from '../harness/env.js';

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T> | T,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A URL on a local port nothing listens on (connections are refused at once). */
export async function deadUrl(): Promise<string> {
  return `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
}

/** Runs one statement on a throw-away connection. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
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

/** Waits until the replica at `replicaUrl` has replayed everything the primary wrote so far. */
export async function caughtUp(primaryUrl: string, replicaUrl: string): Promise<void> {
  const [row] = await sql<{ lsn: string }>(
    primaryUrl,
    'SELECT pg_current_wal_insert_lsn()::text AS lsn',
  );
  await waitFor('replica catch-up', async () => {
    const [r] = await sql<{ ok: boolean }>(
      replicaUrl,
      'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok',
      [row?.lsn],
    );
    return r?.ok === true;
  });
}
