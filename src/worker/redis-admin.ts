import { LuaScript } from '../core/lua-script.js';
import type { CleanableStatus } from './admin.js';
import type { TaskRecord } from './backend.js';
import { parseRecord } from './redis-record.js';
import { LUA } from './lua/index.js';
import { PRELUDE } from './redis-scripts.js';
import type { TaskStatus } from './task-status.js';

/**
 * Listing, cleaning, obliterating and the pause flag on Redis. The scripts take the queue's
 * usual KEYS (see redis-scripts.ts) and read the structures the hot-path scripts keep anyway:
 * the streams, the priority, delayed and dead-letter sets, the expiry set (which orders finished
 * tasks by when they finished) and the cancelled index. Nothing here adds work to submit or claim.
 */

type Arg = string | number;
/** Runs one script against the queue's keys. */
export type Runner = (script: LuaScript, args: readonly Arg[]) => Promise<unknown>;

/** Entries one list call examines at most beyond offset + limit (stale or filtered entries). */
const LIST_SCAN_SLACK = 20_000;
/** Tasks one clean call removes at most: bounds how long one call holds the server. */
const CLEAN_CHUNK = 1000;

/**
 * ARGV: status, offset, limit, now, group, slack. Returns per task: id, task JSON, has result,
 * result. "Newest first" per status: queued in reverse run order (the plain lane newest first,
 * then the priority set from the lowest), delayed by due time (latest first), processing by
 * delivery (latest first), completed/failed/cancelled by when they finished (latest first).
 */
const LIST = new LuaScript(PRELUDE + LUA['admin-list'], 'worker admin-list');

/**
 * ARGV: status, cutoffMs, limit, now, ttlMs, skip. Removes up to limit tasks of a finished status
 * that finished at or before cutoff. Returns { removed, kept (examined, not removed), more }.
 */
const CLEAN = new LuaScript(PRELUDE + LUA['admin-clean'], 'worker admin-clean');

/** ARGV: group, force (1/0). Returns -1 when every key was removed, else the running count. */
const OBLITERATE = new LuaScript(PRELUDE + LUA['admin-obliterate'], 'worker admin-obliterate');

/** Sets (ARGV[1] = 1) or clears the pause flag; clearing wakes idle workers at once. */
const PAUSE = new LuaScript(PRELUDE + LUA['admin-pause'], 'worker admin-pause');

const IS_PAUSED = new LuaScript(PRELUDE + LUA['admin-is-paused'], 'worker admin-is-paused');

/** See {@link QueueAdminBackend.listTasks}. */
export async function listTasks(
  run: Runner,
  group: string,
  status: TaskStatus,
  offset: number,
  limit: number,
  now: number,
): Promise<TaskRecord[]> {
  const r = (await run(LIST, [status, offset, limit, now, group, LIST_SCAN_SLACK])) as Arg[];
  const out: TaskRecord[] = [];
  for (let i = 0; i + 3 < r.length; i += 4) {
    const rec = parseRecord(
      String(r[i]),
      String(r[i + 1]),
      r[i + 2] === 1 ? String(r[i + 3]) : undefined,
    );
    if (rec) out.push(rec);
  }
  return out;
}

/** See {@link QueueAdminBackend.clean}; loops over bounded script calls. */
export async function clean(
  run: Runner,
  status: CleanableStatus,
  cutoffMs: number,
  limit: number,
  now: number,
  ttlMs: number,
): Promise<number> {
  let total = 0;
  let skip = 0;
  while (total < limit) {
    const chunk = Math.min(CLEAN_CHUNK, limit - total);
    const [n, kept, more] = (await run(CLEAN, [
      status,
      cutoffMs,
      chunk,
      now,
      ttlMs,
      skip,
    ])) as number[];
    total += Number(n);
    skip += Number(kept);
    if (Number(more) !== 1) break;
  }
  return total;
}

/** See {@link QueueAdminBackend.obliterate}. */
export async function obliterate(run: Runner, group: string, force: boolean): Promise<number> {
  return Number(await run(OBLITERATE, [group, force ? 1 : 0]));
}

/** See {@link QueueAdminBackend.setPaused}. */
export async function setPaused(run: Runner, paused: boolean): Promise<void> {
  await run(PAUSE, [paused ? 1 : 0]);
}

/** See {@link QueueAdminBackend.isPaused}. */
export async function isPaused(run: Runner): Promise<boolean> {
  return Number(await run(IS_PAUSED, [])) === 1;
}

/** The admin scripts, for tests that check declared keys. @internal */
export const ADMIN_SCRIPTS = { LIST, CLEAN, OBLITERATE, PAUSE, IS_PAUSED };
