-- prelude.lua: Shared local functions of every queue script (joined before each body): load/save/drop
-- of a task, expiry pruning, enqueue, wake. Every queue script takes the same 15 KEYS.
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
--   (none of its own: the script it is joined to declares them)
local S, H, D, P, X, M, W = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local T, DT, R, EXP = KEYS[8], KEYS[9], KEYS[10], KEYS[11]
local IX, RL = KEYS[12], KEYS[13]
local WC = KEYS[15]
local function load(id)
  local v = redis.call('HGET', T, id)
  if not v then return nil end
  return cjson.decode(v)
end
local function save(id, t)
  redis.call('HSET', T, id, cjson.encode(t))
end
local function drop(id)
  redis.call('HDEL', T, id)
  redis.call('HDEL', DT, id)
  redis.call('HDEL', R, id)
  redis.call('ZREM', EXP, id)
  redis.call('ZREM', X, id)
  redis.call('ZREM', IX, id)
end
-- A sub-millisecond tie-break from the submit sequence: tasks finished in the same ms list in
-- submit order (the expiry set doubles as the completed tasks' index).
local function tiebreak(t)
  return ((t.n or 0) % 1024) / 1024
end
-- Forgets up to n expired tasks. Callers pass more than they can finish per call, so expiry keeps
-- up with any finishing rate.
local function prune(now, n)
  local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, n)
  for _, id in ipairs(ids) do drop(id) end
end
local function expired(id, now)
  local x = redis.call('ZSCORE', EXP, id)
  return x and tonumber(x) <= now
end
-- Puts a task where a worker can take it; returns its stream entry id ('' for the priority set,
-- whose members get an entry only when a worker takes them).
local function enqueue(id, pr)
  if pr > 0 then
    local seq = redis.call('HINCRBY', M, 'seq', 1)
    -- Lowest score first: higher priority first, then submit order.
    redis.call('ZADD', P, seq - pr * 4294967296, id)
    return ''
  end
  return redis.call('XADD', S, '*', 't', id)
end
local function lanekey(lane)
  if lane == '1' or lane == 1 then return H end
  return S
end
local function wake()
  redis.call('XADD', W, 'MAXLEN', '1', '*', 'x', '1')
end
local function terminal(st)
  return st == 'completed' or st == 'failed' or st == 'cancelled'
end
