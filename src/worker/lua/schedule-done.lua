-- schedule-done.lua: Forgets a pending tick once its task exists.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   ARGV[1] pending field ("id\ntick")
return redis.call('HDEL', KEYS[4], ARGV[1])
