-- events.lua: Part of the prelude: emit() writes one event; finished() is called once a task reached
-- a terminal state and moves its flow on. EV_MAX is replaced for another events.maxLen.
--
-- KEYS:
--   KEYS[14] events stream (and the queue keys of prelude.lua)
-- ARGV:
--   (none of its own: the script it is joined to declares them)
local EV = KEYS[14]
local EV_MAX = 10000
local function emit(kind, id, a, ...)
  return redis.call('XADD', EV, 'MAXLEN', '~', EV_MAX, '*', 'e', kind, 'i', id,
    'a', a or 0, ...)
end
-- Called once a task reached a terminal state (t already saved, its expiry set): writes the
-- event, lets a finished parent's children expire with it, and moves the task's parent on.
local function finished(id, t, kind, now, ttl, res)
  if kind == 'completed' then
    if res and #res <= 16384 then emit(kind, id, t.a, 'r', res)
    else emit(kind, id, t.a, 'big', '1') end
  elseif kind == 'failed' then
    emit(kind, id, t.a, 'er', t.er or '')
  else
    emit(kind, id, t.a)
  end
  if t.fc then
    for _, c in ipairs(t.fc) do
      if redis.call('HEXISTS', T, c) == 1 then redis.call('ZADD', EXP, now + ttl, c) end
    end
  end
  if not t.fp then return end
  local pid = t.fp
  local p = load(pid)
  if not p or terminal(p.st) then return end
  -- The parent may still read this child's result: it is kept until the parent finishes.
  redis.call('ZREM', EXP, id)
  if p.st ~= 'waiting-children' then return end
  if kind == 'completed' or t.fi then
    p.fw = (p.fw or 1) - 1
    if p.fw <= 0 then
      redis.call('ZREM', WC, pid)
      p.fw = nil
      p.st = 'queued'
      p.u = now
      p.e = enqueue(pid, p.pr or 0)
      save(pid, p)
      wake()
    else
      save(pid, p)
    end
    return
  end
  local why = 'was cancelled'
  if kind == 'failed' then
    local ok, ce = pcall(cjson.decode, t.er or '')
    local msg = 'unknown error'
    if ok and type(ce) == 'table' and type(ce.message) == 'string' then msg = ce.message end
    why = 'failed: ' .. msg
  end
  redis.call('ZREM', WC, pid)
  p.st = 'failed'
  p.u = now
  p.e = ''
  p.fw = nil
  p.er = cjson.encode({ name = 'ChildTaskFailedError', code = 'AZS_CHILD_TASK_FAILED',
    child = id, message = 'child task ' .. id .. ' ' .. why })
  save(pid, p)
  redis.call('ZADD', X, now, pid)
  redis.call('ZADD', EXP, now + ttl + tiebreak(p), pid)
  redis.call('HINCRBY', M, 'failed', 1)
  finished(pid, p, 'failed', now, ttl)
end
