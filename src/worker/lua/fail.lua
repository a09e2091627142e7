-- fail.lua: Records failed attempts. Returns per failure 0 ignored, 1 retry, 2 dead.
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
--   ARGV[2] now (ms)
--   ARGV[3] ttlMs
--   ARGV[4..] per failure, 6 each: id, lane, entryId, attempt, errorJson, retryAt (-1: for good)
local g = ARGV[1]
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local out = {}
local woke = false
local failed = 0
for i = 4, #ARGV, 6 do
  local id = ARGV[i]
  local key = lanekey(ARGV[i + 1])
  local e = ARGV[i + 2]
  local attempt = tonumber(ARGV[i + 3])
  local retryAt = tonumber(ARGV[i + 5])
  local t = load(id)
  local current = t and t.st == 'processing' and t.a == attempt
  -- A stale attempt must not acknowledge the delivery its successor now holds (same entry). The
  -- acknowledgement comes after the state change, so a refused write (OOM) leaves it pending.
  local ack = current or not t or t.e ~= e
  if not current then
    out[#out + 1] = 0
  elseif retryAt >= 0 then
    t.er = ARGV[i + 4]
    t.u = now
    if retryAt <= now then
      t.e = enqueue(id, t.pr or 0)
      t.st = 'queued'
      woke = true
    else
      redis.call('ZADD', D, retryAt, id)
      t.st = 'delayed'
      t.e = ''
    end
    save(id, t)
    emit('retrying', id, attempt, 'er', ARGV[i + 4], 'at', retryAt)
    out[#out + 1] = 1
  else
    t.st = 'failed'
    t.er = ARGV[i + 4]
    t.u = now
    t.e = ''
    save(id, t)
    redis.call('ZADD', X, now, id)
    redis.call('ZADD', EXP, now + ttl, id)
    finished(id, t, 'failed', now, ttl)
    failed = failed + 1
    out[#out + 1] = 2
  end
  if ack then
    redis.call('XACK', key, g, e)
    redis.call('XDEL', key, e)
  end
end
if failed > 0 then redis.call('HINCRBY', M, 'failed', failed) end
if woke then wake() end
return out
