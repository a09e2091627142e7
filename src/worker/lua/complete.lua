-- complete.lua: Records results (first finisher wins). Returns how many completed now.
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
--   ARGV[3] ttlMs
--   ARGV[4..] per completion, 4 each: id, lane, entryId, result
local g = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local done = 0
for i = 4, #ARGV, 4 do
  done = done + complete(g, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], now, ttl)
end
if done > 0 then redis.call('HINCRBY', M, 'completed', done) end
return done
