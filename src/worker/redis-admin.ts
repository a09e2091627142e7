import { LuaScript } from '../core/lua-script.js';
import type { CleanableStatus } from './admin.js';
import type { TaskRecord } from './backend.js';
import { parseRecord } from './redis-backend.js';
import { PRELUDE } from './redis-scripts.js';
import type { TaskStatus } from './types.js';

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
const LIST = new LuaScript(`${PRELUDE}
local st, off, lim, now, g = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local budget = off + lim + tonumber(ARGV[6])
local terminal_st = st == 'completed' or st == 'failed' or st == 'cancelled'
local out, skip, found, seen = {}, off, 0, 0
-- Returns true once the page is full.
local function consider(id, entry)
  seen = seen + 1
  if not id then return false end
  local v = redis.call('HGET', T, id)
  if not v then return false end
  local t = cjson.decode(v)
  if t.st ~= st then return false end
  if entry and t.e ~= entry then return false end
  if terminal_st and expired(id, now) then return false end
  if skip > 0 then
    skip = skip - 1
    return false
  end
  out[#out + 1] = id
  out[#out + 1] = v
  local r = st == 'completed' and redis.call('HGET', R, id)
  out[#out + 1] = r and 1 or 0
  out[#out + 1] = r or ''
  found = found + 1
  return found >= lim
end
local function zscan(key)
  local start = 0
  while seen < budget do
    local ids = redis.call('ZREVRANGE', key, start, start + 499)
    if #ids == 0 then return false end
    for _, id in ipairs(ids) do
      if consider(id) then return true end
    end
    start = start + 500
  end
  return false
end
if st == 'queued' then
  -- Entries after the group's last delivered id have not been handed to any worker.
  local last
  local gs = redis.pcall('XINFO', 'GROUPS', S)
  if type(gs) == 'table' and not gs.err then
    for _, gi in ipairs(gs) do
      local f = {}
      for j = 1, #gi, 2 do f[gi[j]] = gi[j + 1] end
      if f['name'] == g then last = f['last-delivered-id'] end
    end
  end
  local hi = '+'
  local lo = '-'
  if last then lo = '(' .. last end
  local full = false
  while not full and seen < budget do
    local ents = redis.call('XREVRANGE', S, hi, lo, 'COUNT', 500)
    if #ents == 0 then break end
    for _, e in ipairs(ents) do
      if consider(e[2][2], e[1]) then
        full = true
        break
      end
    end
    hi = '(' .. ents[#ents][1]
  end
  if not full then zscan(P) end
elseif st == 'processing' then
  local ents = {}
  for lane = 0, 1 do
    local key = S
    if lane == 1 then key = H end
    local r = redis.pcall('XPENDING', key, g, '-', '+', 10000)
    if type(r) == 'table' and not r.err then
      for _, p in ipairs(r) do
        local ms, sq = string.match(p[1], '^(%d+)-(%d+)$')
        ents[#ents + 1] = { key, p[1], tonumber(ms) or 0, tonumber(sq) or 0 }
      end
    end
  end
  table.sort(ents, function(a, b)
    if a[3] ~= b[3] then return a[3] > b[3] end
    return a[4] > b[4]
  end)
  for _, e in ipairs(ents) do
    if seen >= budget then break end
    local x = redis.call('XRANGE', e[1], e[2], e[2])
    if consider(x[1] and x[1][2][2], e[2]) then break end
  end
elseif st == 'delayed' then
  zscan(D)
elseif st == 'completed' then
  zscan(EXP)
elseif st == 'failed' then
  zscan(X)
elseif st == 'cancelled' then
  zscan(IX)
elseif st == 'waiting-children' then
  zscan(WC)
end
return out
`);

/**
 * ARGV: status, cutoffMs, limit, now, ttlMs, skip. Removes up to limit tasks of a finished status
 * that finished at or before cutoff. Returns { removed, kept (examined, not removed), more }.
 */
const CLEAN = new LuaScript(`${PRELUDE}
local st, cutoff, lim, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local skip = tonumber(ARGV[6])
local n, kept = 0, 0
local key, hi = X, cutoff
if st == 'cancelled' then key = IX end
-- The expiry set orders finished tasks by finish time plus the ttl they were given.
if st == 'completed' then key, hi = EXP, cutoff + ttl end
local ids = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. (hi + 1), 'LIMIT', skip, lim * 5)
for _, id in ipairs(ids) do
  if n >= lim then break end
  local t = load(id)
  if not t then
    redis.call('ZREM', key, id)
  elseif t.st == st and (t.u or 0) <= cutoff then
    drop(id)
    n = n + 1
  elseif key ~= EXP and t.st ~= st then
    redis.call('ZREM', key, id)
  else
    kept = kept + 1
  end
end
local more = 0
if n >= lim or #ids >= lim * 5 then more = 1 end
return { n, kept, more }
`);

/** ARGV: group, force (1/0). Returns -1 when every key was removed, else the running count. */
const OBLITERATE = new LuaScript(`${PRELUDE}
local g = ARGV[1]
local running = 0
for _, key in ipairs({ S, H }) do
  local r = redis.pcall('XPENDING', key, g)
  if type(r) == 'table' and not r.err then running = running + (tonumber(r[1]) or 0) end
end
if running > 0 and ARGV[2] ~= '1' then return running end
for i = 1, #KEYS do redis.call('UNLINK', KEYS[i]) end
return -1
`);

/** Sets (ARGV[1] = 1) or clears the pause flag; clearing wakes idle workers at once. */
const PAUSE = new LuaScript(`${PRELUDE}
if ARGV[1] == '1' then
  redis.call('HSET', M, 'paused', '1')
else
  redis.call('HDEL', M, 'paused')
  wake()
end
return 1
`);

const IS_PAUSED = new LuaScript(`${PRELUDE}
return redis.call('HEXISTS', M, 'paused')
`);

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
