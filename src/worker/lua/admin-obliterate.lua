-- admin-obliterate.lua: Removes every key of the queue. Returns -1 when done, else the running count.
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
--   ARGV[2] force (1/0)
local g = ARGV[1]
local running = 0
for _, key in ipairs({ S, H }) do
  local r = redis.pcall('XPENDING', key, g)
  if type(r) == 'table' and not r.err then running = running + (tonumber(r[1]) or 0) end
end
if running > 0 and ARGV[2] ~= '1' then return running end
for i = 1, #KEYS do redis.call('UNLINK', KEYS[i]) end
return -1
