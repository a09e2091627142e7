/**
 * The worker's Lua lives in src/worker/lua/*.lua: every file starts with a header naming each
 * KEYS[i] and ARGV[i] its body uses, every file is loaded, and the numbers the TypeScript side
 * relies on are the ones in the Lua.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LUA } from '../../src/worker/lua/index.js';
import {
  EVENTS_MAX_LEN,
  EVENT_INLINE_RESULT_BYTES,
  withEventsMaxLen,
} from '../../src/worker/redis-flow-scripts.js';
import { CLAIM } from '../../src/worker/redis-scripts.js';

const dir = join(import.meta.dirname, '../../src/worker/lua');
const files = readdirSync(dir).filter((f) => f.endsWith('.lua'));

function split(text: string): { header: string; body: string } {
  const lines = text.split('\n');
  let i = 0;
  while (i < lines.length && (lines[i] as string).startsWith('--')) i++;
  return { header: lines.slice(0, i).join('\n'), body: lines.slice(i).join('\n') };
}

describe('worker Lua files', () => {
  it('every .lua file is loaded, and nothing else', () => {
    expect(Object.keys(LUA).sort()).toEqual(files.map((f) => f.replace(/\.lua$/, '')).sort());
  });

  it.each(files)('%s names every KEYS[i] and ARGV[i] it uses in its header', (file) => {
    const { header, body } = split(readFileSync(join(dir, file), 'utf8'));
    expect(header).toMatch(/^-- .+\.lua: /);
    expect(header).toContain('-- KEYS:');
    expect(header).toContain('-- ARGV:');
    for (const [, kind, n] of body.matchAll(/\b(KEYS|ARGV)\[(\d+)\]/g)) {
      expect(header, `${file}: ${kind}[${n}]`).toMatch(new RegExp(`${kind}\\[${n}(\\]|\\.\\.)`));
    }
  });

  it('the events cap and the inline-result size in the Lua are the TypeScript constants', () => {
    expect(LUA.events).toContain(`local EV_MAX = ${EVENTS_MAX_LEN}\n`);
    expect(LUA.events).toContain(`#res <= ${EVENT_INLINE_RESULT_BYTES} `);
    const custom = withEventsMaxLen(CLAIM, 500);
    expect(custom).toContain('local EV_MAX = 500\n');
    expect(custom).not.toContain(`local EV_MAX = ${EVENTS_MAX_LEN}\n`);
  });
});
