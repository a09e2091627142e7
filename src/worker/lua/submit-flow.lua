-- submit-flow.lua: Adds a whole flow in one step. Returns { 1 }, { -1, waiting } or { -2, id }.
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
--   ARGV[4..] per node (pre-order), 11 each: id, data, maxAttempts, timeout, priority,
--     delayMs, trace, parent id, number of children, ignore-failure (0/1), name
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local N = 11
prune(now, 100 + (#ARGV - 3) / N)
local fresh = 0
for i = 4, #ARGV, N do
  local id = ARGV[i]
  if redis.call('HEXISTS', T, id) == 1 then
    if expired(id, now) then drop(id) else return { -2, id } end
  end
  fresh = fresh + 1
end
if max >= 0 then
  local g = ARGV[3]
  local function pending(key)
    local r = redis.pcall('XPENDING', key, g)
    if type(r) ~= 'table' or r.err then return 0 end
    return tonumber(r[1]) or 0
  end
  local waiting = redis.call('XLEN', S) - pending(S) + redis.call('XLEN', H) - pending(H)
    + redis.call('ZCARD', P) + redis.call('ZCARD', D)
  if waiting + fresh > max then return { -1, waiting } end
end
local made = {}
local order = {}
-- Numbered in submit order like plain submits (for listing).
local seq = redis.call('HINCRBY', M, 'n', fresh) - fresh
for i = 4, #ARGV, N do
  local id = ARGV[i]
  seq = seq + 1
  local pr = tonumber(ARGV[i + 4])
  local delay = tonumber(ARGV[i + 5])
  local nch = tonumber(ARGV[i + 8])
  local t = { st = 'queued', a = 0, c = now, u = now, e = '', n = seq }
  if ARGV[i + 2] ~= '0' then t.ma = tonumber(ARGV[i + 2]) end
  if ARGV[i + 3] ~= '0' then t.to = ARGV[i + 3] end
  if pr ~= 0 then t.pr = pr end
  if ARGV[i + 6] ~= '' then t.tc = ARGV[i + 6] end
  if ARGV[i + 10] ~= '' then t.nm = ARGV[i + 10] end
  local parent = ARGV[i + 7]
  if parent ~= '' then
    t.fp = parent
    if ARGV[i + 9] == '1' then t.fi = 1 end
    local pt = made[parent]
    pt.fc[#pt.fc + 1] = id
  end
  if nch > 0 then
    t.st = 'waiting-children'
    redis.call('ZADD', WC, now, id)
    t.fw = nch
    t.fc = {}
  elseif delay > 0 then
    t.st = 'delayed'
    redis.call('ZADD', D, now + delay, id)
  else
    t.e = enqueue(id, pr)
  end
  made[id] = t
  order[#order + 1] = id
  redis.call('HSET', DT, id, ARGV[i + 1])
end
for _, id in ipairs(order) do save(id, made[id]) end
wake()
return { 1 }
