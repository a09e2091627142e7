-- release.lua: Shutdown: every task the consumer holds goes back to the queue (attempt not counted).
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
--   ARGV[2] consumer
--   ARGV[3] now (ms)
local g, c = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local n = 0
for lane = 0, 1 do
  local key = lanekey(lane)
  local ok, pend = pcall(redis.call, 'XPENDING', key, g, '-', '+', 1000, c)
  if ok then
    for _, p in ipairs(pend) do
      local e = p[1]
      local ent = redis.call('XRANGE', key, e, e)
      local id = ent[1] and ent[1][2][2]
      local t = id and load(id)
      if t and t.st == 'processing' and t.e == e then
        t.e = enqueue(id, t.pr or 0)
        local a = (t.a or 1) - 1
        if a < 0 then a = 0 end
        t.st = 'queued'
        t.a = a
        t.u = now
        save(id, t)
        n = n + 1
      end
      redis.call('XACK', key, g, e)
      redis.call('XDEL', key, e)
    end
    local left = redis.call('XPENDING', key, g, '-', '+', 1, c)
    if #left == 0 then redis.call('XGROUP', 'DELCONSUMER', key, g, c) end
  end
end
if n > 0 then wake() end
return n
