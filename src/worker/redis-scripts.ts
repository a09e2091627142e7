/**
 * Lua for the Redis backend, composed from the files in `lua/` (each names its KEYS and ARGV in
 * a header). Every key a script reads or writes is declared in KEYS (so the
 * scripts run on Redis Cluster, Valkey and any store that enforces declared keys): a task's state
 * is not a key of its own but a field of the queue's task hashes, and all of a queue's keys carry
 * its hash tag, so each script runs on one Cluster slot.
 *
 * KEYS (the same for every script): 1 stream (normal lane), 2 stream (priority lane), 3 delayed
 * zset, 4 priority zset, 5 dead-letter zset, 6 meta hash (counters), 7 wake stream, 8 task hash
 * (id -> JSON of the small fields below), 9 data hash (id -> data), 10 result hash (id ->
 * result), 11 expiry zset (id -> when a finished task is forgotten, ms), 12 cancelled index zset
 * (id -> when cancelled, ms; for listing and cleaning), 13 rate-limit log zset (one member per
 * task start, scored by its ms; only with `rateLimit`), 14 events stream, 15 waiting-children
 * index zset (flow parents waiting for their children, by submit ms). Meta fields: `paused` (the pause flag),
 * `n` (task sequence), `seq`, `completed`, `failed`.
 *
 * Task fields: st status, a attempts, ma max attempts (0 = worker default), to timeout s, pr
 * priority, c created ms, u updated ms, e current stream entry id ('' when none), pg progress,
 * er error JSON, tc traceparent, nm name, n submit sequence. Missing numeric fields read as 0.
 *
 * Finished tasks expire through the expiry set: every submit, claim and stats call forgets more
 * of them than it can finish, and readers treat an expired task as gone even before it is pruned.
 */

import { LUA } from './lua/index.js';

/** Shared functions of every queue script (lua/prelude.lua, then lua/events.lua). */
export const PRELUDE = LUA.prelude + LUA.events;
const WITH_COMPLETE = PRELUDE + LUA['complete-fn'];

/** lua/submit.lua. */
export const SUBMIT = PRELUDE + LUA.submit;
/** lua/claim.lua: the worker's one round trip. */
export const CLAIM = WITH_COMPLETE + LUA.claim;
/** lua/complete.lua. */
export const COMPLETE = WITH_COMPLETE + LUA.complete;
/** lua/fail.lua. */
export const FAIL = PRELUDE + LUA.fail;
/** lua/heartbeat.lua. */
export const HEARTBEAT = PRELUDE + LUA.heartbeat;
/** lua/release.lua. */
export const RELEASE = PRELUDE + LUA.release;
/** lua/progress.lua. */
export const PROGRESS = PRELUDE + LUA.progress;
/** lua/cancel.lua. */
export const CANCEL = PRELUDE + LUA.cancel;
/** lua/redrive.lua. */
export const REDRIVE = PRELUDE + LUA.redrive;
/** lua/get.lua. */
export const GET = PRELUDE + LUA.get;
/** lua/dead-letters.lua. */
export const DEAD_LETTERS = PRELUDE + LUA['dead-letters'];
/** lua/stats.lua. */
export const STATS = PRELUDE + LUA.stats;
/** lua/submit-flow.lua. */
export const SUBMIT_FLOW = PRELUDE + LUA['submit-flow'];
/** lua/child-results.lua. */
export const CHILD_RESULTS = PRELUDE + LUA['child-results'];
