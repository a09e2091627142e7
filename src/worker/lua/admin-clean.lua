-- admin-clean.lua: Removes finished tasks older than the cutoff. Returns { removed, kept, more }.
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
--   ARGV[1] status
--   ARGV[2] cutoff ms
--   ARGV[3] limit
--   ARGV[4] now (ms)
--   ARGV[5] ttlMs
--   ARGV[6] skip
local st, cutoff, lim, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local skip = tonumber(ARGV[6])
local n, kept = 0, 0
local key, hi = X, cutoff
if st == 'cancelled' then key = IX end
-- The expiry set orders finished tasks by finish time plus the ttl they were given.
if st == 'completed' then key, hi = EXP, cutoff + ttl end
local ids = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. (hi + 1), 'LIMIT', skip, lim * 5)
for _, id in ipairs(ids) do
  if n >= lim then break end
  local t = load(id)
  if not t then
    redis.call('ZREM', key, id)
  elseif t.st == st and (t.u or 0) <= cutoff then
    drop(id)
    n = n + 1
  elseif key ~= EXP and t.st ~= st then
    redis.call('ZREM', key, id)
  else
    kept = kept + 1
  end
end
local more = 0
if n >= lim or #ids >= lim * 5 then more = 1 end
return { n, kept, more }
