import { CHILD_RESULTS_BODY, EVENT_HOOKS, SUBMIT_FLOW_BODY } from './redis-flow-scripts.js';

/**
 * Lua for the Redis backend. Every key a script reads or writes is declared in KEYS (so the
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

export const PRELUDE = `
local S, H, D, P, X, M, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local T, DT, R, EXP = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local IX, RL = KEYS[12], KEYS[13]
local WC = KEYS[15]
local function load(id)
  local v = redis.call('HGET', T, id)
  if not v then return nil end
  return cjson.decode(v)
end
local function save(id, t)
  redis.call('HSET', T, id, cjson.encode(t))
end
local function drop(id)
  redis.call('HDEL', T, id)
  redis.call('HDEL', DT, id)
  redis.call('HDEL', R, id)
  redis.call('ZREM', EXP, id)
  redis.call('ZREM', X, id)
  redis.call('ZREM', IX, id)
end
-- A sub-millisecond tie-break from the submit sequence: tasks finished in the same ms list in
-- submit order (the expiry set doubles as the completed tasks' index).
local function tiebreak(t)
  return ((t.n or 0) % 1024) / 1024
end
-- Forgets up to n expired tasks. Callers pass more than they can finish per call, so expiry keeps
-- up with any finishing rate.
local function prune(now, n)
  local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, n)
  for _, id in ipairs(ids) do drop(id) end
end
local function expired(id, now)
  local x = redis.call('ZSCORE', EXP, id)
  return x and tonumber(x) <= now
end
-- Puts a task where a worker can take it; returns its stream entry id ('' for the priority set,
-- whose members get an entry only when a worker takes them).
local function enqueue(id, pr)
  if pr > 0 then
    local seq = redis.call('HINCRBY', M, 'seq', 1)
    -- Lowest score first: higher priority first, then submit order.
    redis.call('ZADD', P, seq - pr * 4294967296, id)
    return ''
  end
  return redis.call('XADD', S, '*', 't', id)
end
local function lanekey(lane)
  if lane == '1' or lane == 1 then return H end
  return S
end
local function wake()
  redis.call('XADD', W, 'MAXLEN', '1', '*', 'x', '1')
end
local function terminal(st)
  return st == 'completed' or st == 'failed' or st == 'cancelled'
end
${EVENT_HOOKS}`;

const COMPLETE_FN = `
-- First finisher wins: a finished task is never overwritten; the delivery is acknowledged and
-- removed from the stream either way (that removal is what keeps the stream short). The result is
-- written before the acknowledgement: a write Redis refuses (OOM) must leave the delivery
-- pending, so the result is retried or the task reclaimed, never acknowledged without a result.
-- A replayed call (a lost reply) finds the task completed and changes nothing.
local function complete(g, id, lane, e, res, now, ttl)
  local key = lanekey(lane)
  local t = load(id)
  local done = 0
  if t and not terminal(t.st) then
    local prev, pe = t.st, t.e
    t.st = 'completed'
    t.u = now
    t.e = ''
    save(id, t)
    redis.call('HSET', R, id, res)
    redis.call('HDEL', DT, id)
    redis.call('ZADD', EXP, now + ttl + tiebreak(t), id)
    finished(id, t, 'completed', now, ttl, res)
    if prev ~= 'processing' then
      -- A late finisher of an attempt whose task was meanwhile re-queued: drop the new turn.
      redis.call('ZREM', D, id)
      redis.call('ZREM', P, id)
      if pe and pe ~= '' and pe ~= e then redis.call('XDEL', S, pe) end
    end
    done = 1
  end
  redis.call('XACK', key, g, e)
  redis.call('XDEL', key, e)
  return done
end
`;

/**
 * ARGV: now, maxQueued (-1: no bound), group, then per task: id, data, maxAttempts, timeout,
 * priority, delayMs, trace, name ('' when unnamed). Returns per task 1 (created) or 0 (the id existed); or, when the new
 * tasks would take the waiting count past maxQueued, { -1, waiting } and writes nothing.
 *
 * A resent submit (ioredis replays a command whose reply was lost) carries the same ids, so it
 * finds them and adds no second stream entry.
 */
export const SUBMIT = `${PRELUDE}
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
prune(now, 100 + (#ARGV - 3) / 8)
local function live(id)
  if redis.call('HEXISTS', T, id) == 0 then return false end
  if expired(id, now) then
    drop(id)
    return false
  end
  return true
end
if max >= 0 then
  local fresh = 0
  for i = 4, #ARGV, 8 do
    if not live(ARGV[i]) then fresh = fresh + 1 end
  end
  if fresh > 0 then
    local g = ARGV[3]
    local function pending(key)
      local r = redis.pcall('XPENDING', key, g)
      if type(r) ~= 'table' or r.err then return 0 end
      return tonumber(r[1]) or 0
    end
    -- Stream entries not yet delivered, plus the priority and delayed sets: the waiting tasks.
    local waiting = redis.call('XLEN', S) - pending(S) + redis.call('XLEN', H) - pending(H)
      + redis.call('ZCARD', P) + redis.call('ZCARD', D)
    if waiting + fresh > max then return { -1, waiting } end
  end
end
local out = {}
-- One sequence bump per call numbers the batch's tasks in submit order (for listing).
local seq = redis.call('HINCRBY', M, 'n', (#ARGV - 3) / 8) - (#ARGV - 3) / 8
for i = 4, #ARGV, 8 do
  local id = ARGV[i]
  seq = seq + 1
  if live(id) then
    out[#out + 1] = 0
  else
    local pr = tonumber(ARGV[i + 4])
    local delay = tonumber(ARGV[i + 5])
    -- Default-valued fields are left out: readers treat a missing one as 0.
    local t = { st = 'queued', a = 0, c = now, u = now, e = '' }
    if delay > 0 then
      t.st = 'delayed'
      redis.call('ZADD', D, now + delay, id)
    else
      t.e = enqueue(id, pr)
    end
    if ARGV[i + 2] ~= '0' then t.ma = tonumber(ARGV[i + 2]) end
    -- Kept as text: a script's number reply is truncated to an integer (0.2 s would become 0).
    if ARGV[i + 3] ~= '0' then t.to = ARGV[i + 3] end
    if pr ~= 0 then t.pr = pr end
    if ARGV[i + 6] ~= '' then t.tc = ARGV[i + 6] end
    if ARGV[i + 7] ~= '' then t.nm = ARGV[i + 7] end
    t.n = seq
    save(id, t)
    redis.call('HSET', DT, id, ARGV[i + 1])
    out[#out + 1] = 1
  end
end
wake()
return out
`;

/**
 * The worker's one round trip: record completions, promote due delayed tasks, reclaim idle
 * deliveries (XAUTOCLAIM), read new ones (XREADGROUP COUNT n, priority lane first) and mark them
 * processing.
 * ARGV: group, consumer, now, count, reclaimIdleMs, defaultAttempts, ttlMs, nCompletions,
 * then per completion: id, lane, entryId, result; then rate max (0: none), rate window ms.
 * Returns: nextDue (-1 none), wake token ('' when the batch is full), then per task: lane,
 * entryId, id, data, attempt, maxAttempts, timeout, trace ('' when none), name ('' when none).
 *
 * While the queue is paused (meta `paused`) nothing is handed out or reclaimed; completions are
 * still recorded and delayed tasks still promoted. With a rate limit the batch is cut to what the
 * sliding window allows, and a held-back worker is told when the window frees a slot (as nextDue).
 */
export const CLAIM = `${PRELUDE}${COMPLETE_FN}
local g, c = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local count = tonumber(ARGV[4])
local idle = tonumber(ARGV[5])
local defa = tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local nc = tonumber(ARGV[8])
local i = 9
local done = 0
for j = 1, nc do
  done = done + complete(g, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ttl)
  i = i + 4
end
if done > 0 then redis.call('HINCRBY', M, 'completed', done) end
prune(now, 100 + 2 * (count + nc))
local asked = count
local paused = redis.call('HEXISTS', M, 'paused') == 1
local rlmax, rlper = tonumber(ARGV[i] or '0'), tonumber(ARGV[i + 1] or '0')
local rlnext = -1
-- The window runs on the server's clock: a claim's own 'now' is taken before its round trip
-- (and any reconnect), so it can be late by more than a window, and hosts' clocks differ.
local rlnow = now
if paused then
  count = 0
elseif rlmax > 0 then
  local tm = redis.call('TIME')
  rlnow = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
  redis.call('ZREMRANGEBYSCORE', RL, '-inf', rlnow - rlper)
  local allow = rlmax - redis.call('ZCARD', RL)
  if allow < count then
    if allow < 0 then allow = 0 end
    count = allow
    -- When the oldest start in the window leaves it, the next task may start (told in the
    -- caller's clock).
    local first = redis.call('ZRANGE', RL, 0, 0, 'WITHSCORES')
    if first[2] then rlnext = tonumber(first[2]) + rlper + 1 - rlnow + now end
  end
end

local due = redis.call('ZRANGEBYSCORE', D, '-inf', now, 'LIMIT', 0, 500)
for _, id in ipairs(due) do
  redis.call('ZREM', D, id)
  local t = load(id)
  if t and t.st == 'delayed' then
    t.e = enqueue(id, t.pr or 0)
    t.st = 'queued'
    t.u = now
    save(id, t)
  end
end

local out = {}
local n = 0
local failed = 0
local function take(lane, e, fields, reclaimed)
  local key = lanekey(lane)
  local id = fields and fields[2]
  local t = id and load(id)
  local want = 'queued'
  if reclaimed then want = 'processing' end
  if not t or t.st ~= want or t.e ~= e then
    -- Stale delivery: the task finished, was cancelled, expired or got a newer entry.
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
    return
  end
  local a = (t.a or 0) + 1
  local ma = t.ma or 0
  if ma == 0 then ma = defa end
  if reclaimed and a > ma then
    t.st = 'failed'
    t.u = now
    t.e = ''
    t.er = cjson.encode({ name = 'WorkerLostError',
      message = 'task ' .. id .. ' was reclaimed from a dead worker ' .. (a - 1) .. ' times' })
    save(id, t)
    redis.call('ZADD', X, now, id)
    redis.call('ZADD', EXP, now + ttl, id)
    finished(id, t, 'failed', now, ttl)
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
    failed = failed + 1
    return
  end
  t.st = 'processing'
  t.a = a
  t.u = now
  -- A new attempt starts without the previous attempt's progress.
  t.pg = nil
  save(id, t)
  n = n + 1
  out[#out + 1] = lane
  out[#out + 1] = e
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', DT, id) or 'null'
  out[#out + 1] = a
  out[#out + 1] = t.ma or 0
  out[#out + 1] = t.to or '0'
  out[#out + 1] = t.tc or ''
  out[#out + 1] = t.nm or ''
  if rlmax > 0 then redis.call('ZADD', RL, rlnow, id .. ':' .. a) end
end

if idle > 0 and count > 0 then
  for lane = 0, 1 do
    local key = lanekey(lane)
    -- Consumers left by crashed workers: once they hold nothing and have been silent for ten
    -- visibility timeouts, drop them (a live one that is merely idle is recreated by its next
    -- read, losing nothing).
    for _, info in ipairs(redis.call('XINFO', 'CONSUMERS', key, g)) do
      local f = {}
      for j = 1, #info, 2 do f[info[j]] = info[j + 1] end
      if f['name'] ~= c and tonumber(f['pending']) == 0 and tonumber(f['idle']) > idle * 10 then
        redis.call('XGROUP', 'DELCONSUMER', key, g, f['name'])
      end
    end
    local cursor = '0-0'
    for iter = 1, 4 do
      if n >= count then break end
      local r = redis.call('XAUTOCLAIM', key, g, c, idle, cursor, 'COUNT', count - n)
      cursor = r[1]
      for _, ent in ipairs(r[2]) do take(lane, ent[1], ent[2], true) end
      if cursor == '0-0' then break end
    end
  end
end

if n < count and redis.call('ZCARD', P) > 0 then
  local popped = redis.call('ZPOPMIN', P, count - n)
  local moved = 0
  for j = 1, #popped, 2 do
    local id = popped[j]
    local t = load(id)
    if t and t.st == 'queued' then
      t.e = redis.call('XADD', H, '*', 't', id)
      save(id, t)
      moved = moved + 1
    end
  end
  if moved > 0 then
    local r = redis.call('XREADGROUP', 'GROUP', g, c, 'COUNT', moved, 'STREAMS', H, '>')
    if r then for _, ent in ipairs(r[1][2]) do take(1, ent[1], ent[2], false) end end
  end
end

for iter = 1, 20 do
  if n >= count then break end
  local r = redis.call('XREADGROUP', 'GROUP', g, c, 'COUNT', count - n, 'STREAMS', S, '>')
  if not r then break end
  local ents = r[1][2]
  if #ents == 0 then break end
  for _, ent in ipairs(ents) do take(0, ent[1], ent[2], false) end
end
if failed > 0 then redis.call('HINCRBY', M, 'failed', failed) end

-- The next due time and the wake token matter only to a worker about to wait (a short batch).
local head = { -1, '' }
if rlmax > 0 and n > 0 then redis.call('PEXPIRE', RL, rlper + 1000) end
if n < asked then
  local nd = redis.call('ZRANGE', D, 0, 0, 'WITHSCORES')
  if nd[2] and not paused then head[1] = tonumber(nd[2]) end
  if rlnext >= 0 and (head[1] < 0 or rlnext < head[1]) then head[1] = rlnext end
  local lw = redis.call('XREVRANGE', W, '+', '-', 'COUNT', 1)
  head[2] = '0-0'
  if lw[1] then head[2] = lw[1][1] end
end
for j = 1, #out do head[#head + 1] = out[j] end
return head
`;

/** ARGV: group, now, ttlMs, then per completion: id, lane, entryId, result. */
export const COMPLETE = `${PRELUDE}${COMPLETE_FN}
local g = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local done = 0
for i = 4, #ARGV, 4 do
  done = done + complete(g, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ttl)
end
if done > 0 then redis.call('HINCRBY', M, 'completed', done) end
return done
`;

/**
 * ARGV: group, now, ttlMs, then per failure: id, lane, entryId, attempt, errorJson, retryAt
 * (-1: fail for good). Returns per failure: 0 ignored, 1 retry, 2 dead.
 */
export const FAIL = `${PRELUDE}
local g = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local out = {}
local woke = false
local failed = 0
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  local key = lanekey(ARGV[i + 1])
  local e = ARGV[i + 2]
  local attempt = tonumber(ARGV[i + 3])
  local retryAt = tonumber(ARGV[i + 5])
  local t = load(id)
  local current = t and t.st == 'processing' and t.a == attempt
  -- A stale attempt must not acknowledge the delivery its successor now holds (same entry). The
  -- acknowledgement comes after the state change, so a refused write (OOM) leaves it pending.
  local ack = current or not t or t.e ~= e
  if not current then
    out[#out + 1] = 0
  elseif retryAt >= 0 then
    t.er = ARGV[i + 4]
    t.u = now
    if retryAt <= now then
      t.e = enqueue(id, t.pr or 0)
      t.st = 'queued'
      woke = true
    else
      redis.call('ZADD', D, retryAt, id)
      t.st = 'delayed'
      t.e = ''
    end
    save(id, t)
    emit('retrying', id, attempt, 'er', ARGV[i + 4], 'at', retryAt)
    out[#out + 1] = 1
  else
    t.st = 'failed'
    t.er = ARGV[i + 4]
    t.u = now
    t.e = ''
    save(id, t)
    redis.call('ZADD', X, now, id)
    redis.call('ZADD', EXP, now + ttl, id)
    finished(id, t, 'failed', now, ttl)
    failed = failed + 1
    out[#out + 1] = 2
  end
  if ack then
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
  end
end
if failed > 0 then redis.call('HINCRBY', M, 'failed', failed) end
if woke then wake() end
return out
`;

/**
 * Renews leases by resetting the idle time of our deliveries (XCLAIM to ourselves, JUSTID).
 * ARGV: group, consumer, then per task: id, lane, entryId, attempt.
 * Returns per task: 0 ok, 1 cancelled, 2 lost.
 */
export const HEARTBEAT = `${PRELUDE}
local g, c = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 4 do
  local t = load(ARGV[i])
  if t and t.st == 'cancelled' then
    out[#out + 1] = 1
  elseif not t or t.st ~= 'processing' or t.a ~= tonumber(ARGV[i + 3]) then
    out[#out + 1] = 2
  else
    local r = redis.call('XCLAIM', lanekey(ARGV[i + 1]), g, c, 0, ARGV[i + 2], 'JUSTID')
    if #r == 0 then out[#out + 1] = 2 else out[#out + 1] = 0 end
  end
end
return out
`;

/**
 * Shutdown: puts every task this consumer still holds back in the queue at once (the attempt is
 * not counted), then removes the consumer from the group when it holds nothing.
 * ARGV: group, consumer, now.
 */
export const RELEASE = `${PRELUDE}
local g, c = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local n = 0
for lane = 0, 1 do
  local key = lanekey(lane)
  local ok, pend = pcall(redis.call, 'XPENDING', key, g, '-', '+', 1000, c)
  if ok then
    for _, p in ipairs(pend) do
      local e = p[1]
      local ent = redis.call('XRANGE', key, e, e)
      local id = ent[1] and ent[1][2][2]
      local t = id and load(id)
      if t and t.st == 'processing' and t.e == e then
        t.e = enqueue(id, t.pr or 0)
        local a = (t.a or 1) - 1
        if a < 0 then a = 0 end
        t.st = 'queued'
        t.a = a
        t.u = now
        save(id, t)
        n = n + 1
      end
      redis.call('XACK', key, g, e)
      redis.call('XDEL', key, e)
    end
    local left = redis.call('XPENDING', key, g, '-', '+', 1, c)
    if #left == 0 then redis.call('XGROUP', 'DELCONSUMER', key, g, c) end
  end
end
if n > 0 then wake() end
return n
`;

/** ARGV: id, attempt, value, now. Returns 1 when stored. */
export const PROGRESS = `${PRELUDE}
local id = ARGV[1]
local t = load(id)
if not t or t.st ~= 'processing' or t.a ~= tonumber(ARGV[2]) then return 0 end
t.pg = tonumber(ARGV[3])
t.u = tonumber(ARGV[4])
save(id, t)
emit('progress', id, t.a, 'p', ARGV[3])
return 1
`;

/** ARGV: id, now, ttlMs. Returns -1 missing, 0 terminal, 1 cancelled while waiting, 2 while running. */
export const CANCEL = `${PRELUDE}
local id = ARGV[1]
local now = tonumber(ARGV[2])
local t = load(id)
if not t or expired(id, now) then return -1 end
local st = t.st
if terminal(st) then return 0 end
if st == 'delayed' then
  redis.call('ZREM', D, id)
elseif st == 'waiting-children' then
  redis.call('ZREM', WC, id)
elseif st == 'queued' then
  redis.call('ZREM', P, id)
  if t.e and t.e ~= '' then redis.call('XDEL', S, t.e) end
end
t.st = 'cancelled'
t.u = now
save(id, t)
redis.call('ZADD', EXP, now + tonumber(ARGV[3]), id)
redis.call('ZADD', IX, now + tiebreak(t), id)
finished(id, t, 'cancelled', now, tonumber(ARGV[3]))
if st == 'processing' then return 2 end
return 1
`;

/** ARGV: now, then ids (none: every dead letter, up to 1000 per call). Returns how many. */
export const REDRIVE = `${PRELUDE}
local now = tonumber(ARGV[1])
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', X, 0, 999)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', X, id) == 1 then
    local t = load(id)
    if t and t.st == 'failed' and not expired(id, now) then
      redis.call('ZREM', EXP, id)
      t.er = nil
      t.pg = nil
      t.e = enqueue(id, t.pr or 0)
      t.st = 'queued'
      t.a = 0
      t.u = now
      save(id, t)
      n = n + 1
    end
  end
end
if n > 0 then wake() end
return n
`;

/**
 * ARGV: id, now. Returns nil for an unknown or expired task, else { task JSON, has result (0/1),
 * result }. The data is left out: it may be large and getTask does not show it.
 */
export const GET = `${PRELUDE}
local id = ARGV[1]
local v = redis.call('HGET', T, id)
if not v or expired(id, tonumber(ARGV[2])) then return nil end
local r = redis.call('HGET', R, id)
-- ARGV[3] == '1': the data too (kept until the task completes), as a 4th element.
local d = ARGV[3] == '1' and redis.call('HGET', DT, id) or false
if r then return { v, 1, r, d } end
return { v, 0, '', d }
`;

/**
 * ARGV: limit, now. Returns, per dead letter (oldest first), id, task JSON, has result, result;
 * ids whose task is gone or expired leave the list.
 */
export const DEAD_LETTERS = `${PRELUDE}
local now = tonumber(ARGV[2])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', X, 0, tonumber(ARGV[1]) - 1)) do
  local v = redis.call('HGET', T, id)
  if not v or expired(id, now) then
    redis.call('ZREM', X, id)
  else
    local r = redis.call('HGET', R, id)
    out[#out + 1] = id
    out[#out + 1] = v
    out[#out + 1] = r and 1 or 0
    out[#out + 1] = r or ''
  end
end
return out
`;

/**
 * ARGV: group, now. Forgets expired tasks (up to 100), then returns queued, delayed, processing,
 * completed, failed, dead, oldest ms (-1), waiting-children.
 */
export const STATS = `${PRELUDE}
local g = ARGV[1]
prune(tonumber(ARGV[2]), 1000)
local function pending(key)
  local r = redis.pcall('XPENDING', key, g)
  if type(r) ~= 'table' or r.err then return 0, nil end
  return tonumber(r[1]) or 0, r[3]
end
local ps, smax = pending(S)
local ph = pending(H)
local ls = redis.call('XLEN', S)
local lh = redis.call('XLEN', H)
local qs = ls - ps
if qs < 0 then qs = 0 end
local qh = lh - ph
if qh < 0 then qh = 0 end
local oldest = -1
if qs > 0 then
  local first
  if smax then first = redis.call('XRANGE', S, '(' .. smax, '+', 'COUNT', 1)
  else first = redis.call('XRANGE', S, '-', '+', 'COUNT', 1) end
  if first[1] then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
end
local m = redis.call('HMGET', M, 'completed', 'failed')
return { qs + qh + redis.call('ZCARD', P), redis.call('ZCARD', D), ps + ph,
  tonumber(m[1]) or 0, tonumber(m[2]) or 0, redis.call('ZCARD', X), oldest,
  redis.call('ZCARD', WC) }
`;

/** See redis-flow-scripts.ts. */
export const SUBMIT_FLOW = `${PRELUDE}${SUBMIT_FLOW_BODY}`;

/** See redis-flow-scripts.ts. */
export const CHILD_RESULTS = `${PRELUDE}${CHILD_RESULTS_BODY}`;
