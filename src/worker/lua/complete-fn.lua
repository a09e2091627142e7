-- complete-fn.lua: complete(): records one finished attempt (first finisher wins) and acknowledges it.
--
-- KEYS:
--   (none of its own: the script it is joined to declares them)
-- ARGV:
--   (none: complete(g, id, lane, entryId, result, now, ttl) takes its values as arguments)
-- First finisher wins: a finished task is never overwritten; the delivery is acknowledged and
-- removed from the stream either way (that removal is what keeps the stream short). The result is
-- written before the acknowledgement: a write Redis refuses (OOM) must leave the delivery
-- pending, so the result is retried or the task reclaimed, never acknowledged without a result.
-- A replayed call (a lost reply) finds the task completed and changes nothing.
local function complete(g, id, lane, e, res, now, ttl)
  local key = lanekey(lane)
  local t = load(id)
  local done = 0
  if t and not terminal(t.st) then
    local prev, pe = t.st, t.e
    t.st = 'completed'
    t.u = now
    t.e = ''
    save(id, t)
    redis.call('HSET', R, id, res)
    redis.call('HDEL', DT, id)
    redis.call('ZADD', EXP, now + ttl + tiebreak(t), id)
    finished(id, t, 'completed', now, ttl, res)
    if prev ~= 'processing' then
      -- A late finisher of an attempt whose task was meanwhile re-queued: drop the new turn.
      redis.call('ZREM', D, id)
      redis.call('ZREM', P, id)
      if pe and pe ~= '' and pe ~= e then redis.call('XDEL', S, pe) end
    end
    done = 1
  end
  redis.call('XACK', key, g, e)
  redis.call('XDEL', key, e)
  return done
end
