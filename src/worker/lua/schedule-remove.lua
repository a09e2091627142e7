-- schedule-remove.lua: Removes a schedule. Returns 1 when it existed.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   ARGV[1] schedule id
local had = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return had
