import { readLuaFiles } from '../../core/lua-files.js';

/**
 * The worker's Lua, one `.lua` file per script (see each file's header for its KEYS and ARGV).
 * Queue scripts are `prelude` + `events` (+ `complete-fn`) + a body; see redis-scripts.ts.
 * The build inlines these files (src/core/lua-files.ts); the list must stay literal.
 */
export const LUA = readLuaFiles(import.meta.url, [
  'prelude',
  'events',
  'complete-fn',
  'submit',
  'claim',
  'complete',
  'fail',
  'heartbeat',
  'release',
  'progress',
  'cancel',
  'redrive',
  'get',
  'dead-letters',
  'stats',
  'submit-flow',
  'child-results',
  'admin-list',
  'admin-clean',
  'admin-obliterate',
  'admin-pause',
  'admin-is-paused',
  'schedule-upsert',
  'schedule-remove',
  'schedule-list',
  'schedule-due',
  'schedule-advance',
  'schedule-done',
  'schedule-clear',
]);
