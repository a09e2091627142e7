-- get.lua: Returns nil, or { task JSON, has result, result, data or false }.
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
--   ARGV[1] task id
--   ARGV[2] now (ms)
--   ARGV[3] '1': the data too
local id = ARGV[1]
local v = redis.call('HGET', T, id)
if not v or expired(id, tonumber(ARGV[2])) then return nil end
local r = redis.call('HGET', R, id)
-- ARGV[3] == '1': the data too (kept until the task completes), as a 4th element.
local d = ARGV[3] == '1' and redis.call('HGET', DT, id) or false
if r then return { v, 1, r, d } end
return { v, 0, '', d }
