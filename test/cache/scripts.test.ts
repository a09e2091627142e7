/**
 * Every key the cache's Lua scripts touch is declared in KEYS: each script runs on real Redis
 * (standalone and Cluster) behind a prelude that shadows `redis.call`/`redis.pcall` and fails on
 * any key argument that is not in KEYS.
 */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { CACHE_SCRIPTS } from '../../src/cache/scripts.js';
import { servers, uniquePrefix } from '../harness/env.js';

// Commands the prelude knows, with the positions of their key arguments ('all': every one).
const PRELUDE = `
local __declared = {}
for _, k in ipairs(KEYS) do __declared[k] = true end
local __positions = { get = {1}, set = {1}, del = 'all', pexpire = {1}, pttl = {1}, exists = 'all' }
local function __check(cmd, ...)
  local args = {...}
  local pos = __positions[string.lower(cmd)]
  if pos == nil then error('prelude: unknown command ' .. cmd) end
  if pos == 'all' then
    for _, k in ipairs(args) do
      if not __declared[k] then error('undeclared key ' .. tostring(k)) end
    end
  else
    for _, i in ipairs(pos) do
      if not __declared[args[i]] then error('undeclared key ' .. tostring(args[i])) end
    end
  end
end
local __redis = redis
local redis = setmetatable({
  call = function(cmd, ...) __check(cmd, ...) return __redis.call(cmd, ...) end,
  pcall = function(cmd, ...) __check(cmd, ...) return __redis.pcall(cmd, ...) end,
}, { __index = __redis })
`;

describe.each(['redis', 'cluster'] as const)('cache scripts declare their keys (%s)', (mode) => {
  it('every script runs through the checking prelude; an undeclared key fails it', async () => {
    const s = servers();
    const client = mode === 'cluster' ? new Cluster(s.clusterNodes) : new Redis(s.redisUrl);
    const p = uniquePrefix('scripts');
    try {
      expect(Object.keys(CACHE_SCRIPTS).length).toBeGreaterThan(0);
      // releaseLock: removes the lock only for its holder's token.
      const release = CACHE_SCRIPTS.releaseLock;
      expect(release?.numKeys).toBe(1);
      const lock = `${p}lock`;
      await client.set(lock, 'me', 'PX', 10_000);
      const run = (src: string, keys: string[], args: string[]) =>
        client.eval(PRELUDE + src, keys.length, ...keys, ...args);
      expect(await run(release?.source ?? '', [lock], ['you'])).toBe(0);
      expect(await client.get(lock)).toBe('me');
      expect(await run(release?.source ?? '', [lock], ['me'])).toBe(1);
      expect(await client.get(lock)).toBeNull();
      // The prelude really checks: the same call on a key built inside the script fails.
      const sneaky = `return redis.call('get', KEYS[1] .. ':other')`;
      await expect(run(sneaky, [`{${p}}x`], [])).rejects.toThrow(/undeclared key/);
    } finally {
      client.disconnect();
    }
  });
});
