-- admin-list.lua: Lists tasks of one status, newest first. Returns id, task JSON, has result, result each.
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
--   ARGV[2] offset
--   ARGV[3] limit
--   ARGV[4] now (ms)
--   ARGV[5] consumer group
--   ARGV[6] scan slack
local st, off, lim, now, g = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local budget = off + lim + tonumber(ARGV[6])
local terminal_st = st == 'completed' or st == 'failed' or st == 'cancelled'
local out, skip, found, seen = {}, off, 0, 0
-- Returns true once the page is full.
local function consider(id, entry)
  seen = seen + 1
  if not id then return false end
  local v = redis.call('HGET', T, id)
  if not v then return false end
  local t = cjson.decode(v)
  if t.st ~= st then return false end
  if entry and t.e ~= entry then return false end
  if terminal_st and expired(id, now) then return false end
  if skip > 0 then
    skip = skip - 1
    return false
  end
  out[#out + 1] = id
  out[#out + 1] = v
  local r = st == 'completed' and redis.call('HGET', R, id)
  out[#out + 1] = r and 1 or 0
  out[#out + 1] = r or ''
  found = found + 1
  return found >= lim
end
local function zscan(key)
  local start = 0
  while seen < budget do
    local ids = redis.call('ZREVRANGE', key, start, start + 499)
    if #ids == 0 then return false end
    for _, id in ipairs(ids) do
      if consider(id) then return true end
    end
    start = start + 500
  end
  return false
end
if st == 'queued' then
  -- Entries after the group's last delivered id have not been handed to any worker.
  local last
  local gs = redis.pcall('XINFO', 'GROUPS', S)
  if type(gs) == 'table' and not gs.err then
    for _, gi in ipairs(gs) do
      local f = {}
      for j = 1, #gi, 2 do f[gi[j]] = gi[j + 1] end
      if f['name'] == g then last = f['last-delivered-id'] end
    end
  end
  local hi = '+'
  local lo = '-'
  if last then lo = '(' .. last end
  local full = false
  while not full and seen < budget do
    local ents = redis.call('XREVRANGE', S, hi, lo, 'COUNT', 500)
    if #ents == 0 then break end
    for _, e in ipairs(ents) do
      if consider(e[2][2], e[1]) then
        full = true
        break
      end
    end
    hi = '(' .. ents[#ents][1]
  end
  if not full then zscan(P) end
elseif st == 'processing' then
  local ents = {}
  for lane = 0, 1 do
    local key = S
    if lane == 1 then key = H end
    local r = redis.pcall('XPENDING', key, g, '-', '+', 10000)
    if type(r) == 'table' and not r.err then
      for _, p in ipairs(r) do
        local ms, sq = string.match(p[1], '^(%d+)-(%d+)$')
        ents[#ents + 1] = { key, p[1], tonumber(ms) or 0, tonumber(sq) or 0 }
      end
    end
  end
  table.sort(ents, function(a, b)
    if a[3] ~= b[3] then return a[3] > b[3] end
    return a[4] > b[4]
  end)
  for _, e in ipairs(ents) do
    if seen >= budget then break end
    local x = redis.call('XRANGE', e[1], e[2], e[2])
    if consider(x[1] and x[1][2][2], e[2]) then break end
  end
elseif st == 'delayed' then
  zscan(D)
elseif st == 'completed' then
  zscan(EXP)
elseif st == 'failed' then
  zscan(X)
elseif st == 'cancelled' then
  zscan(IX)
elseif st == 'waiting-children' then
  zscan(WC)
end
return out
