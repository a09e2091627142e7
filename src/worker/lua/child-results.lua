-- child-results.lua: Returns { 0 } for an unknown task, else { 1, then id, result per completed child }.
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
--   ARGV[1] parent id
--   ARGV[2] now (ms)
local t = load(ARGV[1])
if not t or expired(ARGV[1], tonumber(ARGV[2])) then return { 0 } end
local out = { 1 }
for _, c in ipairs(t.fc or {}) do
  local ct = load(c)
  local r = redis.call('HGET', R, c)
  if ct and ct.st == 'completed' and r then
    out[#out + 1] = c
    out[#out + 1] = r
  end
end
return out
