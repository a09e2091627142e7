-- schedule-list.lua: Returns id, definition, next run per schedule.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   (none)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('ZSCORE', KEYS[2], all[i]) or ''
end
return out
