-- redrive.lua: Puts dead letters back in the queue. Returns how many.
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
--   ARGV[2..] task ids (none: every dead letter, up to 1000 per call)
local now = tonumber(ARGV[1])
local ids = {}
if #ARGV > 1 then
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', X, 0, 999)
end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', X, id) == 1 then
    local t = load(id)
    if t and t.st == 'failed' and not expired(id, now) then
      redis.call('ZREM', EXP, id)
      t.er = nil
      t.pg = nil
      t.e = enqueue(id, t.pr or 0)
      t.st = 'queued'
      t.a = 0
      t.u = now
      save(id, t)
      n = n + 1
    end
  end
end
if n > 0 then wake() end
return n
