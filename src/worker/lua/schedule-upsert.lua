-- schedule-upsert.lua: Upserts a schedule; keeps its next run unless its timing changed. Returns it.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   ARGV[1] schedule id
--   ARGV[2] definition JSON
--   ARGV[3] timing key
--   ARGV[4] next run ms ('' none)
local old = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if old ~= ARGV[3] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
  else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
end
return redis.call('ZSCORE', KEYS[2], ARGV[1]) or ''
