-- progress.lua: Stores progress of the current attempt. Returns 1 when stored.
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
--   ARGV[2] attempt
--   ARGV[3] progress value
--   ARGV[4] now (ms)
local id = ARGV[1]
local t = load(id)
if not t or t.st ~= 'processing' or t.a ~= tonumber(ARGV[2]) then return 0 end
t.pg = tonumber(ARGV[3])
t.u = tonumber(ARGV[4])
save(id, t)
emit('progress', id, t.a, 'p', ARGV[3])
return 1
