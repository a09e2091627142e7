-- schedule-advance.lua: Moves a schedule to its next run if nobody did. Returns 1 when this call did.
--
-- KEYS:
--   KEYS[1] schedule definitions (hash id -> JSON)
--   KEYS[2] next runs (zset id -> ms)
--   KEYS[3] timing keys (hash id -> string)
--   KEYS[4] pending ticks (hash "id\ntick" -> definition JSON)
-- ARGV:
--   ARGV[1] schedule id
--   ARGV[2] expected next run ms
--   ARGV[3] definition JSON
--   ARGV[4] new next run ms ('' none)
--   ARGV[5..] ticks to record as pending
local cur = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
for i = 5, #ARGV do redis.call('HSET', KEYS[4], ARGV[1] .. '\n' .. ARGV[i], ARGV[3]) end
return 1
