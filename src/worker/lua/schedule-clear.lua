-- schedule-clear.lua: Deletes every key of the queue's schedules.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   (none)
return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
