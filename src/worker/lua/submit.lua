-- submit.lua: Adds tasks. Returns per task 1 (created) or 0 (the id existed), or { -1, waiting }
-- when maxQueued would be passed (nothing written then).
--
-- KEYS:
--   KEYS[1]  stream of the normal lane (entries: t = task id)
--   KEYS[2]  stream of the priority lane
--   KEYS[3]  delayed zset (id -> due ms)
--   KEYS[4]  priority zset (id -> order score)
--   KEYS[5]  dead-letter zset (id -> failed ms)
--   KEYS[6]  meta hash (paused, n, seq, completed, failed)
--   KEYS[7]  wake stream (MAXLEN 1)
--   KEYS[8]  task hash (id -> task JSON)
--   KEYS[9]  data hash (id -> data JSON)
--   KEYS[10] result hash (id -> result JSON)
--   KEYS[11] expiry zset (id -> forget-at ms)
--   KEYS[12] cancelled index zset (id -> cancelled ms)
--   KEYS[13] rate-limit log zset (start ms per task start)
--   KEYS[14] events stream
--   KEYS[15] waiting-children index zset (parent id -> submit ms)
-- ARGV:
--   ARGV[1] now (ms)
--   ARGV[2] maxQueued (-1: no bound)
--   ARGV[3] consumer group
--   ARGV[4..] per task, 8 each: id, data, maxAttempts, timeout, priority, delayMs, trace, name
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
