/**
 * Lua for the Redis backend. Every script touches only keys of one queue, all of which carry the
 * queue's hash tag, so each runs on one Cluster slot. Task hashes are not passed in KEYS (their
 * ids come in ARGV); they share the slot with KEYS[1], which is what Redis Cluster requires.
 *
 * KEYS: 1 stream (normal lane), 2 stream (priority lane), 3 delayed zset, 4 priority zset,
 * 5 dead-letter zset, 6 meta hash (counters), 7 wake stream.
 *
 * Task hash fields: st status, d data, r result, er error, pg progress, a attempts, ma max
 * attempts (0 = worker default), to timeout s, pr priority, c created ms, u updated ms,
 * e current stream entry id ('' when none).
 */

const PRELUDE = `
local S, H, D, P, X, M, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
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
`;

const COMPLETE_FN = `
-- First finisher wins: a finished task is never overwritten; the delivery is acknowledged and
-- removed from the stream either way (that removal is what keeps the stream short). The result is
-- written before the acknowledgement: a write Redis refuses (OOM) must leave the delivery
-- pending, so the result is retried or the task reclaimed, never acknowledged without a result.
local function complete(tp, g, id, lane, e, res, now, ttl)
  local key = lanekey(lane)
  local k = tp .. id
  local f = redis.call('HMGET', k, 'st', 'e')
  local st = f[1]
  local done = 0
  if st and not terminal(st) then
    redis.call('HSET', k, 'st', 'completed', 'r', res, 'u', now, 'e', '')
    redis.call('HDEL', k, 'd')
    redis.call('PEXPIRE', k, ttl)
    if st ~= 'processing' then
      -- A late finisher of an attempt whose task was meanwhile re-queued: drop the new turn.
      redis.call('ZREM', D, id)
      redis.call('ZREM', P, id)
      if f[2] and f[2] ~= '' and f[2] ~= e then redis.call('XDEL', S, f[2]) end
    end
    done = 1
  end
  redis.call('XACK', key, g, e)
  redis.call('XDEL', key, e)
  return done
end
`;

/**
 * ARGV: tp, now, maxQueued (-1: no bound), group, then per task: id, data, maxAttempts, timeout,
 * priority, delayMs, trace. Returns per task 1 (created) or 0 (the id existed); or, when the new
 * tasks would take the waiting count past maxQueued, { -1, waiting } and writes nothing.
 *
 * A resent submit (ioredis replays a command whose reply was lost) carries the same ids, so
 * HSETNX finds them and it adds no second stream entry.
 */
export const SUBMIT = `${PRELUDE}
local tp = ARGV[1]
local now = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
if max >= 0 then
  local fresh = 0
  for i = 5, #ARGV, 7 do
    if redis.call('EXISTS', tp .. ARGV[i]) == 0 then fresh = fresh + 1 end
  end
  if fresh > 0 then
    local g = ARGV[4]
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
for i = 5, #ARGV, 7 do
  local id = ARGV[i]
  local k = tp .. id
  -- HSETNX both tests for the id (idempotency) and writes its creation time.
  if redis.call('HSETNX', k, 'c', now) == 0 then
    out[#out + 1] = 0
  else
    local pr = tonumber(ARGV[i + 4])
    local delay = tonumber(ARGV[i + 5])
    local st, e = 'queued', ''
    if delay > 0 then
      st = 'delayed'
      redis.call('ZADD', D, now + delay, id)
    else
      e = enqueue(id, pr)
    end
    -- Default-valued fields are left out: readers treat a missing one as 0.
    local f = { 'st', st, 'd', ARGV[i + 1], 'a', 0, 'u', now, 'e', e }
    if ARGV[i + 2] ~= '0' then f[#f + 1] = 'ma'; f[#f + 1] = ARGV[i + 2] end
    if ARGV[i + 3] ~= '0' then f[#f + 1] = 'to'; f[#f + 1] = ARGV[i + 3] end
    if pr ~= 0 then f[#f + 1] = 'pr'; f[#f + 1] = pr end
    if ARGV[i + 6] ~= '' then f[#f + 1] = 'tc'; f[#f + 1] = ARGV[i + 6] end
    redis.call('HSET', k, unpack(f))
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
 * ARGV: tp, group, consumer, now, count, reclaimIdleMs, defaultAttempts, ttlMs, nCompletions,
 * then per completion: id, lane, entryId, result.
 * Returns: nextDue (-1 none), wake token ('' when the batch is full), then per task: lane,
 * entryId, id, data, attempt, maxAttempts, timeout, trace ('' when none).
 */
export const CLAIM = `${PRELUDE}${COMPLETE_FN}
local tp, g, c = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
local count = tonumber(ARGV[5])
local idle = tonumber(ARGV[6])
local defa = tonumber(ARGV[7])
local ttl = tonumber(ARGV[8])
local nc = tonumber(ARGV[9])
local i = 10
local done = 0
for j = 1, nc do
  done = done + complete(tp, g, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ttl)
  i = i + 4
end
if done > 0 then redis.call('HINCRBY', M, 'completed', done) end

local due = redis.call('ZRANGEBYSCORE', D, '-inf', now, 'LIMIT', 0, 500)
for _, id in ipairs(due) do
  redis.call('ZREM', D, id)
  local k = tp .. id
  local f = redis.call('HMGET', k, 'st', 'pr')
  if f[1] == 'delayed' then
    local e = enqueue(id, tonumber(f[2]) or 0)
    redis.call('HSET', k, 'st', 'queued', 'u', now, 'e', e)
  end
end

local out = {}
local n = 0
local failed = 0
local function take(lane, e, fields, reclaimed)
  local key = lanekey(lane)
  local id = fields and fields[2]
  if not id then
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
    return
  end
  local k = tp .. id
  local f = redis.call('HMGET', k, 'st', 'd', 'a', 'ma', 'to', 'e', 'tc')
  local st = f[1]
  local want = 'queued'
  if reclaimed then want = 'processing' end
  if st ~= want or f[6] ~= e then
    -- Stale delivery: the task finished, was cancelled, expired or got a newer entry.
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
    return
  end
  local a = (tonumber(f[3]) or 0) + 1
  local ma = tonumber(f[4]) or 0
  if ma == 0 then ma = defa end
  if reclaimed and a > ma then
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
    redis.call('HSET', k, 'st', 'failed', 'u', now, 'e', '', 'er',
      cjson.encode({ name = 'WorkerLostError',
        message = 'task ' .. id .. ' was reclaimed from a dead worker ' .. (a - 1) .. ' times' }))
    redis.call('ZADD', X, now, id)
    redis.call('PEXPIRE', k, ttl)
    failed = failed + 1
    return
  end
  redis.call('HSET', k, 'st', 'processing', 'a', a, 'u', now)
  -- A new attempt starts without the previous attempt's progress.
  if a > 1 then redis.call('HDEL', k, 'pg') end
  n = n + 1
  out[#out + 1] = lane
  out[#out + 1] = e
  out[#out + 1] = id
  out[#out + 1] = f[2] or 'null'
  out[#out + 1] = a
  out[#out + 1] = f[4] or '0'
  out[#out + 1] = f[5] or '0'
  out[#out + 1] = f[7] or ''
end

if idle > 0 then
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
    local k = tp .. id
    if redis.call('HGET', k, 'st') == 'queued' then
      local e = redis.call('XADD', H, '*', 't', id)
      redis.call('HSET', k, 'e', e)
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
if n < count then
  local nd = redis.call('ZRANGE', D, 0, 0, 'WITHSCORES')
  if nd[2] then head[1] = tonumber(nd[2]) end
  local lw = redis.call('XREVRANGE', W, '+', '-', 'COUNT', 1)
  head[2] = '0-0'
  if lw[1] then head[2] = lw[1][1] end
end
for j = 1, #out do head[#head + 1] = out[j] end
return head
`;

/** ARGV: tp, group, now, ttlMs, then per completion: id, lane, entryId, result. */
export const COMPLETE = `${PRELUDE}${COMPLETE_FN}
local tp, g = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local done = 0
for i = 5, #ARGV, 4 do
  done = done + complete(tp, g, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ttl)
end
if done > 0 then redis.call('HINCRBY', M, 'completed', done) end
return done
`;

/**
 * ARGV: tp, group, now, ttlMs, then per failure: id, lane, entryId, attempt, errorJson, retryAt
 * (-1: fail for good). Returns per failure: 0 ignored, 1 retry, 2 dead.
 */
export const FAIL = `${PRELUDE}
local tp, g = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local out = {}
local woke = false
local failed = 0
for i = 5, #ARGV, 6 do
  local id = ARGV[i]
  local key = lanekey(ARGV[i + 1])
  local e = ARGV[i + 2]
  local attempt = tonumber(ARGV[i + 3])
  local retryAt = tonumber(ARGV[i + 5])
  local k = tp .. id
  local f = redis.call('HMGET', k, 'st', 'a', 'pr', 'e')
  -- A stale attempt must not acknowledge the delivery its successor now holds (same entry). The
  -- acknowledgement comes after the state change, so a refused write (OOM) leaves it pending.
  local ack = f[4] ~= e or (f[1] == 'processing' and tonumber(f[2]) == attempt)
  if f[1] ~= 'processing' or tonumber(f[2]) ~= attempt then
    out[#out + 1] = 0
  elseif retryAt >= 0 then
    if retryAt <= now then
      local ne = enqueue(id, tonumber(f[3]) or 0)
      redis.call('HSET', k, 'st', 'queued', 'er', ARGV[i + 4], 'u', now, 'e', ne)
      woke = true
    else
      redis.call('ZADD', D, retryAt, id)
      redis.call('HSET', k, 'st', 'delayed', 'er', ARGV[i + 4], 'u', now, 'e', '')
    end
    out[#out + 1] = 1
  else
    redis.call('HSET', k, 'st', 'failed', 'er', ARGV[i + 4], 'u', now, 'e', '')
    redis.call('ZADD', X, now, id)
    redis.call('PEXPIRE', k, ttl)
    failed = failed + 1
    out[#out + 1] = 2
  end
  if ack then
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
  end
end
if failed > 0 then
  redis.call('HINCRBY', M, 'failed', failed)
  -- Dead letters leave the list when their task hash expires.
  redis.call('ZREMRANGEBYSCORE', X, '-inf', now - ttl)
end
if woke then wake() end
return out
`;

/**
 * Renews leases by resetting the idle time of our deliveries (XCLAIM to ourselves, JUSTID).
 * ARGV: tp, group, consumer, then per task: id, lane, entryId, attempt.
 * Returns per task: 0 ok, 1 cancelled, 2 lost.
 */
export const HEARTBEAT = `${PRELUDE}
local tp, g, c = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 4 do
  local f = redis.call('HMGET', tp .. ARGV[i], 'st', 'a')
  if f[1] == 'cancelled' then
    out[#out + 1] = 1
  elseif f[1] ~= 'processing' or tonumber(f[2]) ~= tonumber(ARGV[i + 3]) then
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
 * ARGV: tp, group, consumer, now.
 */
export const RELEASE = `${PRELUDE}
local tp, g, c = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
local n = 0
for lane = 0, 1 do
  local key = lanekey(lane)
  local ok, pend = pcall(redis.call, 'XPENDING', key, g, '-', '+', 1000, c)
  if ok then
    for _, p in ipairs(pend) do
      local e = p[1]
      local ent = redis.call('XRANGE', key, e, e)
      redis.call('XACK', key, g, e)
      redis.call('XDEL', key, e)
      local id = ent[1] and ent[1][2][2]
      if id then
        local k = tp .. id
        local f = redis.call('HMGET', k, 'st', 'a', 'pr', 'e')
        if f[1] == 'processing' and f[4] == e then
          local ne = enqueue(id, tonumber(f[3]) or 0)
          local a = (tonumber(f[2]) or 1) - 1
          if a < 0 then a = 0 end
          redis.call('HSET', k, 'st', 'queued', 'a', a, 'u', now, 'e', ne)
          n = n + 1
        end
      end
    end
    local left = redis.call('XPENDING', key, g, '-', '+', 1, c)
    if #left == 0 then redis.call('XGROUP', 'DELCONSUMER', key, g, c) end
  end
end
if n > 0 then wake() end
return n
`;

/** ARGV: tp, id, attempt, value, now. Returns 1 when stored. */
export const PROGRESS = `
local k = ARGV[1] .. ARGV[2]
local f = redis.call('HMGET', k, 'st', 'a')
if f[1] ~= 'processing' or tonumber(f[2]) ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', k, 'pg', ARGV[4], 'u', ARGV[5])
return 1
`;

/** ARGV: tp, id, now, ttlMs. Returns -1 missing, 0 terminal, 1 cancelled while waiting, 2 while running. */
export const CANCEL = `${PRELUDE}
local k = ARGV[1] .. ARGV[2]
local id = ARGV[2]
local f = redis.call('HMGET', k, 'st', 'e', 'pr')
local st = f[1]
if not st then return -1 end
if terminal(st) then return 0 end
if st == 'delayed' then
  redis.call('ZREM', D, id)
elseif st == 'queued' then
  redis.call('ZREM', P, id)
  if f[2] and f[2] ~= '' then redis.call('XDEL', S, f[2]) end
end
redis.call('HSET', k, 'st', 'cancelled', 'u', ARGV[3])
redis.call('PEXPIRE', k, tonumber(ARGV[4]))
if st == 'processing' then return 2 end
return 1
`;

/** ARGV: tp, now, then ids (none: every dead letter, up to 1000 per call). Returns how many. */
export const REDRIVE = `${PRELUDE}
local tp = ARGV[1]
local now = tonumber(ARGV[2])
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', X, 0, 999)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', X, id) == 1 then
    local k = tp .. id
    local f = redis.call('HMGET', k, 'st', 'pr')
    if f[1] == 'failed' then
      redis.call('PERSIST', k)
      redis.call('HDEL', k, 'er', 'pg')
      local e = enqueue(id, tonumber(f[2]) or 0)
      redis.call('HSET', k, 'st', 'queued', 'a', 0, 'u', now, 'e', e)
      n = n + 1
    end
  end
end
if n > 0 then wake() end
return n
`;

/** ARGV: group. Returns queued, delayed, processing, completed, failed, dead, oldest ms (-1). */
export const STATS = `${PRELUDE}
local g = ARGV[1]
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
  tonumber(m[1]) or 0, tonumber(m[2]) or 0, redis.call('ZCARD', X), oldest }
`;
