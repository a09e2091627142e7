import { LuaScript } from '../core/lua-script.js';

/**
 * The session's two Lua scripts. Every key either touches is declared in KEYS: KEYS[1] the
 * session, KEYS[2] the operation record (same hash slot, see op-key.ts).
 *
 * The operation record is what makes a resent command harmless: ioredis sends a command again
 * when the connection dropped before its reply arrived, although Redis may already have run it.
 * Each call carries an operation id; the script that applies it stores the outcome under
 * KEYS[2] (with an expiry), and a second run with the same id only reads that outcome back.
 */

// Compare-and-set on the value itself, so any writer (a Python service using SETEX, redis-cli)
// is caught, not only writers that know of azscale. A small expected value is compared as is
// (a memcmp on the server); a large one travels as its SHA-1 so it is not sent twice.
// ARGV: [1] '0' the key must be absent, '1' compare SHA-1, '2' compare text; [2] the SHA-1 or
// the text; [3] new text; [4] expiry in ms; [5] expiry of the operation record in ms; [6] what
// the record holds (returned by a replay instead of 1).
// Returns 0 (the value changed: nothing written) or 1, or the record of an earlier run.
// The record is read only when the comparison fails: a replay always finds the value changed
// (by its own first run), so the common, first run skips that read.
const CAS_SOURCE = `
local cur = redis.call('GET', KEYS[1])
local mode = ARGV[1]
local same
if mode == '0' then
  same = not cur
elseif not cur then
  same = false
elseif mode == '2' then
  same = cur == ARGV[2]
else
  same = redis.sha1hex(cur) == ARGV[2]
end
if not same then
  local done = redis.call('GET', KEYS[2])
  if done then return tonumber(done) end
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
redis.call('SET', KEYS[2], ARGV[6], 'PX', ARGV[5])
return 1
`;

// Atomic append: the walk of splice.ts, step for step, on the server. The new value is built by
// splicing the original text, not by re-encoding a decoded table: cjson would turn empty arrays
// into {} and round numbers to 14 digits, silently rewriting fields this call never meant to
// touch. Any structural fault the walk meets raises a Lua error, which pcall turns into code 1,
// exactly where splice.ts throws. Plain (memchr) searches only: Lua's pattern matcher costs about
// a microsecond per 20 bytes scanned, which made long histories slow.
// ARGV: [1] JSON of the new items, comma-separated; [2] expiry in ms; [3] max items (0: no cap);
// [4] max bytes; [5] number of new items (at most the cap); [6] '1': trim the oldest messages
// (never the first system message) to fit max bytes instead of failing; [7] expiry of the
// operation record in ms.
// Returns {0, newLength} or {code, detail}: 1 not JSON, 2 not an object, 3 messages not an
// array, 4 too large (detail: bytes).
const APPEND_SOURCE = String.raw`
local done = redis.call('GET', KEYS[2])
if done then return {0, tonumber(done)} end
local s = redis.call('GET', KEYS[1])
local item = ARGV[1]
local maxItems = tonumber(ARGV[3])
local maxBytes = tonumber(ARGV[4])
local count = tonumber(ARGV[5])
local trim = ARGV[6] == '1'
local find, byte, sub = string.find, string.byte, string.sub

local function malformed() error('malformed', 0) end
local function ws(i) return find(s, '[^ \t\r\n]', i) or (#s + 1) end
-- A quote is escaped when an odd number of backslashes precedes it.
local function str_end(i)
  local j = i + 1
  while true do
    local k = find(s, '"', j, true)
    if not k then malformed() end
    local m = k - 1
    while byte(s, m) == 92 do m = m - 1 end
    if (k - 1 - m) % 2 == 0 then return k end
    j = k + 1
  end
end
local function val_end(i)
  local c = byte(s, i)
  if c == 34 then return str_end(i) end
  if c == 123 or c == 91 then
    -- Only the text between strings can hold brackets; it is short, so walk it byte by byte.
    local depth, j = 0, i
    while true do
      local q = find(s, '"', j, true)
      local stop = q and q - 1 or #s
      for p = j, stop do
        local b = byte(s, p)
        if b == 123 or b == 91 then
          depth = depth + 1
        elseif b == 125 or b == 93 then
          depth = depth - 1
          if depth == 0 then return p end
        end
      end
      if not q then malformed() end
      j = str_end(q) + 1
    end
  end
  if not c or not ((c >= 48 and c <= 57) or c == 45 or c == 116 or c == 102 or c == 110) then
    malformed()
  end
  local k = find(s, '[,}%] \t\r\n]', i + 1)
  if k then return k - 1 end
  return #s
end
-- Raw text of exactly the name's length is the name or something else; only escapes need decoding.
local function string_is(i, e, name)
  if e - i - 1 == #name then return sub(s, i + 1, e - 1) == name end
  local b = find(s, '\\', i, true)
  if not b or b >= e then return false end
  local ok, v = pcall(cjson.decode, sub(s, i, e))
  if not ok then malformed() end
  return v == name
end
-- The last member named name wins, as in JSON.parse and Python's json.loads.
local function member(open, name)
  local i = ws(open + 1)
  local vs, ve
  if byte(s, i) == 125 then return vs, ve, i end
  while true do
    if byte(s, i) ~= 34 then malformed() end
    local kend = str_end(i)
    local found = string_is(i, kend, name)
    i = ws(kend + 1)
    if byte(s, i) ~= 58 then malformed() end
    i = ws(i + 1)
    local e = val_end(i)
    if found then vs, ve = i, e end
    i = ws(e + 1)
    local c = byte(s, i)
    if c == 125 then return vs, ve, i end
    if c ~= 44 then malformed() end
    i = ws(i + 1)
  end
end
local function is_system(i)
  if byte(s, i) ~= 123 then return false end
  local vs, ve = member(i, 'role')
  return vs ~= nil and byte(s, vs) == 34 and string_is(vs, ve, 'system')
end

local function splice()
  if not s then return 0, '{"messages":[' .. item .. ']}', count end
  local open = ws(1)
  if byte(s, open) ~= 123 then return 2 end
  local vs, ve, close = member(open, 'messages')
  if ws(close + 1) ~= #s + 1 then malformed() end
  if not vs then
    local empty = ws(open + 1) == close
    return 0, sub(s, 1, open) .. '"messages":[' .. item .. ']' .. (empty and '' or ',') .. sub(s, open + 1), count
  end
  if byte(s, vs) ~= 91 then return 3 end
  local starts, last = {}, 0
  local j = ws(vs + 1)
  if byte(s, j) ~= 93 then
    while true do
      starts[#starts + 1] = j
      last = val_end(j)
      j = ws(last + 1)
      local c = byte(s, j)
      if c == 93 then break end
      if c ~= 44 then malformed() end
      j = ws(j + 1)
    end
  end
  local n = #starts
  -- k: the first kept old message (1-based); pin: the system message kept apart.
  local k = 1
  if maxItems > 0 and n + count > maxItems then k = n + count - maxItems + 1 end
  local pin
  if trim then
    local fixed = (vs - 1) + (#s - ve) + 2 + #item
    local kept = 0
    if k <= n then kept = last - starts[k] + 2 end
    if fixed + kept > maxBytes then
      local system
      for i = k, n do
        if is_system(starts[i]) then system = i break end
      end
      local pinned = 0
      while fixed + kept + pinned > maxBytes and k <= n do
        local from = starts[k]
        if k == system then
          pin = k
          pinned = val_end(from) - from + 2
        end
        if k + 1 <= n then kept = kept - (starts[k + 1] - from) else kept = 0 end
        k = k + 1
      end
    end
  end
  local parts = {sub(s, 1, vs - 1), '['}
  if pin then parts[#parts + 1] = sub(s, starts[pin], val_end(starts[pin])) .. ',' end
  if k <= n then parts[#parts + 1] = sub(s, starts[k], last) .. ',' end
  parts[#parts + 1] = item
  parts[#parts + 1] = ']'
  parts[#parts + 1] = sub(s, ve + 1)
  return 0, table.concat(parts), (pin and 1 or 0) + n - k + 1 + count
end

local ok, code, out, n = pcall(splice)
if not ok then return {1, 0} end
if code ~= 0 then return {code, 0} end
if #out > maxBytes then return {4, #out} end
redis.call('SET', KEYS[1], out, 'PX', ARGV[2])
redis.call('SET', KEYS[2], n, 'PX', ARGV[7])
return {0, n}
`;

/** Compare-and-set with an operation record (see the comment at the top of this file). */
export const CAS_SCRIPT = new LuaScript(CAS_SOURCE);
/** The server-side append with an operation record. */
export const APPEND_SCRIPT = new LuaScript(APPEND_SOURCE);
