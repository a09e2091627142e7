-- dead-letters.lua: Returns per dead letter (oldest first) id, task JSON, has result, result.
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
--   ARGV[1] limit
--   ARGV[2] now (ms)
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
