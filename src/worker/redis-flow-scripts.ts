/**
 * Lua for queue events and flows (issue 17). `EVENT_HOOKS` is part of every script's prelude
 * (redis-scripts.ts), so the script that changes a task's state is the one that writes the event
 * and moves the task's flow on: no event can be lost between the two, and a parent becomes
 * runnable in the same atomic step that completes its last child.
 *
 * KEYS[14] is the events stream, KEYS[15] the index of parents in `waiting-children`. Events: fields e (kind), i (task id), a (attempt), then r
 * (result JSON, when small enough) or big=1, er (error JSON), p (progress), at (retry time ms).
 *
 * Flow fields of a task (in its JSON, see redis-scripts.ts): fp parent id, fi 1 when the parent
 * ignores this child's failure, fc direct child ids (a parent), fw children not yet finished,
 * nm task name.
 */

/** Default of the most events a queue's stream keeps (trimmed approximately, `MAXLEN ~`). */
export const EVENTS_MAX_LEN = 10_000;
/**
 * The line of the prelude that sets the events cap; a backend with another `events.maxLen`
 * runs scripts with this line replaced (see {@link withEventsMaxLen}).
 */
const EV_MAX_LINE = `local EV_MAX = ${EVENTS_MAX_LEN}`;

/** `source` (a script with the prelude) with the events cap set to `maxLen`. */
export function withEventsMaxLen(source: string, maxLen: number): string {
  if (maxLen === EVENTS_MAX_LEN) return source;
  return source.replace(EV_MAX_LINE, `local EV_MAX = ${Math.trunc(maxLen)}`);
}
/** Results up to this many bytes travel inside the `completed` event; larger ones are read by id. */
export const EVENT_INLINE_RESULT_BYTES = 16_384;

/**
 * Lua functions every worker script gets (part of the prelude): `emit` writes one event to the
 * stream; `finished` is called when a task reaches a terminal state.
 */
export const EVENT_HOOKS = `
local EV = KEYS[14]
${EV_MAX_LINE}
local function emit(kind, id, a, ...)
  return redis.call('XADD', EV, 'MAXLEN', '~', EV_MAX, '*', 'e', kind, 'i', id,
    'a', a or 0, ...)
end
-- Called once a task reached a terminal state (t already saved, its expiry set): writes the
-- event, lets a finished parent's children expire with it, and moves the task's parent on.
local function finished(id, t, kind, now, ttl, res)
  if kind == 'completed' then
    if res and #res <= ${EVENT_INLINE_RESULT_BYTES} then emit(kind, id, t.a, 'r', res)
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
`;

/**
 * Adds a whole flow in one script, parents before their children, so no parent exists without
 * its children (nor runs before them). ARGV: now, maxQueued (-1: no bound), group, then per node
 * (pre-order): id, data, maxAttempts, timeout, priority, delayMs, trace, parent id ('' for the
 * root), number of children, ignore-failure (0/1), name. Returns { 1 }, { -1, waiting } when
 * maxQueued would be passed, or { -2, id } when an id exists; the last two write nothing.
 */
export const SUBMIT_FLOW_BODY = `
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local N = 11
prune(now, 100 + (#ARGV - 3) / N)
local fresh = 0
for i = 4, #ARGV, N do
  local id = ARGV[i]
  if redis.call('HEXISTS', T, id) == 1 then
    if expired(id, now) then drop(id) else return { -2, id } end
  end
  fresh = fresh + 1
end
if max >= 0 then
  local g = ARGV[3]
  local function pending(key)
    local r = redis.pcall('XPENDING', key, g)
    if type(r) ~= 'table' or r.err then return 0 end
    return tonumber(r[1]) or 0
  end
  local waiting = redis.call('XLEN', S) - pending(S) + redis.call('XLEN', H) - pending(H)
    + redis.call('ZCARD', P) + redis.call('ZCARD', D)
  if waiting + fresh > max then return { -1, waiting } end
end
local made = {}
local order = {}
-- Numbered in submit order like plain submits (for listing).
local seq = redis.call('HINCRBY', M, 'n', fresh) - fresh
for i = 4, #ARGV, N do
  local id = ARGV[i]
  seq = seq + 1
  local pr = tonumber(ARGV[i + 4])
  local delay = tonumber(ARGV[i + 5])
  local nch = tonumber(ARGV[i + 8])
  local t = { st = 'queued', a = 0, c = now, u = now, e = '', n = seq }
  if ARGV[i + 2] ~= '0' then t.ma = tonumber(ARGV[i + 2]) end
  if ARGV[i + 3] ~= '0' then t.to = ARGV[i + 3] end
  if pr ~= 0 then t.pr = pr end
  if ARGV[i + 6] ~= '' then t.tc = ARGV[i + 6] end
  if ARGV[i + 10] ~= '' then t.nm = ARGV[i + 10] end
  local parent = ARGV[i + 7]
  if parent ~= '' then
    t.fp = parent
    if ARGV[i + 9] == '1' then t.fi = 1 end
    local pt = made[parent]
    pt.fc[#pt.fc + 1] = id
  end
  if nch > 0 then
    t.st = 'waiting-children'
    redis.call('ZADD', WC, now, id)
    t.fw = nch
    t.fc = {}
  elseif delay > 0 then
    t.st = 'delayed'
    redis.call('ZADD', D, now + delay, id)
  else
    t.e = enqueue(id, pr)
  end
  made[id] = t
  order[#order + 1] = id
  redis.call('HSET', DT, id, ARGV[i + 1])
end
for _, id in ipairs(order) do save(id, made[id]) end
wake()
return { 1 }
`;

/**
 * ARGV: parent id, now. Returns { 0 } for an unknown task, else { 1, then per completed direct
 * child: id, result JSON }.
 */
export const CHILD_RESULTS_BODY = `
local t = load(ARGV[1])
if not t or expired(ARGV[1], tonumber(ARGV[2])) then return { 0 } end
local out = { 1 }
for _, c in ipairs(t.fc or {}) do
  local ct = load(c)
  local r = redis.call('HGET', R, c)
  if ct and ct.st == 'completed' and r then
    out[#out + 1] = c
    out[#out + 1] = r
  end
end
return out
`;
