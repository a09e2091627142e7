/**
 * Constants of the Lua for queue events and flows (lua/events.lua, lua/submit-flow.lua,
 * lua/child-results.lua). lua/events.lua is part of every script's prelude
 * (redis-scripts.ts), so the script that changes a task's state is the one that writes the event
 * and moves the task's flow on: no event can be lost between the two, and a parent becomes
 * runnable in the same atomic step that completes its last child.
 *
 * KEYS[14] is the events stream, KEYS[15] the index of parents in `waiting-children`. Events:
 * fields e (kind), i (task id), a (attempt), then r (result JSON, when small enough) or big=1, er (error JSON), p (progress), at (retry time ms).
 *
 * Flow fields of a task (in its JSON, see redis-scripts.ts): fp parent id, fi 1 when the parent
 * ignores this child's failure, fc direct child ids (a parent), fw children not yet finished,
 * nm task name.
 */

/** Default of the most events a queue's stream keeps (trimmed approximately, `MAXLEN ~`). */
export const EVENTS_MAX_LEN = 10_000;
/**
 * The line of lua/events.lua that sets the events cap (a test keeps it there); a backend with another `events.maxLen`
 * runs scripts with this line replaced (see {@link withEventsMaxLen}).
 */
const EV_MAX_LINE = `local EV_MAX = ${EVENTS_MAX_LEN}`;

/** `source` (a script with the prelude) with the events cap set to `maxLen`. */
export function withEventsMaxLen(source: string, maxLen: number): string {
  if (maxLen === EVENTS_MAX_LEN) return source;
  return source.replace(EV_MAX_LINE, `local EV_MAX = ${Math.trunc(maxLen)}`);
}

/**
 * Results up to this many bytes travel inside the `completed` event; larger ones are read by id
 * (the number in lua/events.lua; a test keeps the two equal).
 */
export const EVENT_INLINE_RESULT_BYTES = 16_384;
