-- cancel.lua: Returns -1 missing, 0 terminal, 1 cancelled while waiting, 2 while running.
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
--   ARGV[3] ttlMs
local id = ARGV[1]
local now = tonumber(ARGV[2])
local t = load(id)
if not t or expired(id, now) then return -1 end
local st = t.st
if terminal(st) then return 0 end
if st == 'delayed' then
  redis.call('ZREM', D, id)
elseif st == 'waiting-children' then
  redis.call('ZREM', WC, id)
elseif st == 'queued' then
  redis.call('ZREM', P, id)
  if t.e and t.e ~= '' then redis.call('XDEL', S, t.e) end
end
t.st = 'cancelled'
t.u = now
save(id, t)
redis.call('ZADD', EXP, now + tonumber(ARGV[3]), id)
redis.call('ZADD', IX, now + tiebreak(t), id)
finished(id, t, 'cancelled', now, tonumber(ARGV[3]))
if st == 'processing' then return 2 end
return 1
