-- claim.lua: The worker's one round trip: record completions, promote due delayed tasks, reclaim
-- idle deliveries, read new ones. Returns nextDue, wake token, then 9 fields per task.
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
--   ARGV[1] consumer group
--   ARGV[2] consumer
--   ARGV[3] now (ms)
--   ARGV[4] count
--   ARGV[5] reclaimIdleMs (0: no reclaim)
--   ARGV[6] default attempts
--   ARGV[7] ttlMs
--   ARGV[8] number of completions, then 4 each: id, lane, entryId, result
--   ARGV[9 + 4n] rate max (0: none)
--   ARGV[10 + 4n] rate window ms
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
