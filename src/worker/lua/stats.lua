-- stats.lua: Returns queued, delayed, processing, completed, failed, dead, oldest ms (-1),
-- waiting-children.
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
--   ARGV[2] now (ms)
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
