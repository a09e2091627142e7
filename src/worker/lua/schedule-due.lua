-- schedule-due.lua: Returns { earliest or '', { id, next, def, ... }, { field, def, ... } }.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   ARGV[1] now (ms)
--   ARGV[2] limit
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local due = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #ids, 2 do
  local def = redis.call('HGET', KEYS[1], ids[i])
  if def then
    due[#due + 1] = ids[i]
    due[#due + 1] = ids[i + 1]
    due[#due + 1] = def
  end
end
local pending = redis.call('HSCAN', KEYS[4], 0, 'COUNT', tonumber(ARGV[2]))[2]
return { first[2] or '', due, pending }
