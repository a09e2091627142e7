-- heartbeat.lua: Renews leases. Returns per task 0 ok, 1 cancelled, 2 lost.
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
--   ARGV[3..] per task, 4 each: id, lane, entryId, attempt
local g, c = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 4 do
  local t = load(ARGV[i])
  if t and t.st == 'cancelled' then
    out[#out + 1] = 1
  elseif not t or t.st ~= 'processing' or t.a ~= tonumber(ARGV[i + 3]) then
    out[#out + 1] = 2
  else
    local r = redis.call('XCLAIM', lanekey(ARGV[i + 1]), g, c, 0, ARGV[i + 2], 'JUSTID')
    if #r == 0 then out[#out + 1] = 2 else out[#out + 1] = 0 end
  end
end
return out
