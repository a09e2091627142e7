import { Cron } from 'croner';
import { ValidationError, describeValue } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { assertDuration } from '../core/timers.js';
import { assertNumber, assertObject } from '../core/validate.js';
import { validateTaskName } from './admin.js';
import { MAX_PRIORITY } from './backend.js';

/** Options of {@link TaskQueue.schedule}: when to run (`every` or `cron`) and the task to submit. */
export interface ScheduleOptions {
  /**
   * Seconds between runs (fractions down to 0.01 are accepted). Ticks are aligned to the epoch:
   * `every: 60` runs at every whole minute, `every: 3600` at every whole hour (UTC). Give this
   * or `cron`, not both.
   */
  every?: number;
  /**
   * A cron expression of 5 fields (`minute hour day-of-month month day-of-week`) or 6 (a leading
   * `second` field), parsed by croner: ranges, steps, lists, names (`MON`, `JAN`), `L`, `W`, `#`
   * and nicknames (`@daily`, `@hourly`). Give this or `every`, not both.
   * @example '0 3 * * *'       // every day at 03:00
   * @example '30 * * * * *'    // at second 30 of every minute (6 fields)
   */
  cron?: string;
  /**
   * IANA time zone the `cron` expression is read in (e.g. `Europe/Berlin`); daylight-saving
   * changes are handled by croner. Only with `cron`.
   * @default 'UTC'
   */
  tz?: string;
  /** The data every run's task receives (JSON-encodable; at most the queue's `maxDataBytes`). @default null */
  data?: unknown;
  /** Task name, so a worker's `handlers[name]` runs it (see named tasks). @default none (the worker's `handler`) */
  name?: string;
  /**
   * After an outage longer than `misfireGrace` the missed ticks are skipped; with `catchUp: true`
   * one task is run for them (for the latest missed tick) before the schedule resumes.
   * @default false
   */
  catchUp?: boolean;
  /**
   * Seconds a tick may still start late (every scheduler stalled or stopped) and count as on
   * time; a tick later than that is missed (see `catchUp`).
   * @default the time to the following tick, at least 1 and at most 60
   */
  misfireGrace?: number;
  /** Priority of every run's task; see {@link SubmitTaskOptions.priority}. @default 0 */
  priority?: number;
  /** Attempts of every run's task; see {@link SubmitTaskOptions.attempts}. @default the worker's */
  attempts?: number;
  /** Seconds one attempt of a run's task may take; see {@link SubmitTaskOptions.timeout}. @default the worker's */
  timeout?: number;
}

/** A schedule as {@link TaskQueue.schedules} lists it. */
export interface ScheduleInfo {
  /** The schedule id. */
  id: string;
  /** Seconds between runs, for an interval schedule. */
  every?: number;
  /** The cron expression, for a cron schedule. */
  cron?: string;
  /** The time zone of `cron`. */
  tz?: string;
  /** The task name every run gets. */
  name?: string;
  /** The data every run's task gets. */
  data: unknown;
  /** Whether one task runs for ticks missed during an outage. */
  catchUp: boolean;
  /** Seconds a tick may start late; absent when the default applies. */
  misfireGrace?: number;
  /** Task priority, when set. */
  priority?: number;
  /** Task attempts, when set. */
  attempts?: number;
  /** Task timeout in seconds, when set. */
  timeout?: number;
  /** When the next run is due; null when the cron expression has no future time. */
  next: Date | null;
}

/**
 * The stored form of a schedule (JSON). `data` is already encoded JSON text, so every scheduler
 * submits byte-identical data and compare-and-set can compare the whole definition as a string.
 * @internal
 */
export interface ScheduleDef {
  id: string;
  everyMs?: number;
  cron?: string;
  tz?: string;
  name?: string;
  data: string;
  catchUp: boolean;
  graceMs?: number;
  priority?: number;
  attempts?: number;
  timeout?: number;
}

/** Longest schedule id: its tick task ids (`schedule:<id>:<ms>`) must fit the 512-character id limit. */
export const MAX_SCHEDULE_ID_LENGTH = 256;
/** Shortest `every`, seconds. */
export const MIN_EVERY_SECONDS = 0.01;
const MAX_CRON_LENGTH = 256;
const MAX_TZ_LENGTH = 64;
const MAX_ATTEMPTS = 1000;
const MIN_DEFAULT_GRACE_MS = 1000;
const MAX_DEFAULT_GRACE_MS = 60_000;

/** The id of the task a schedule's tick at `tickMs` submits: the same in every process. */
export function tickTaskId(scheduleId: string, tickMs: number): string {
  return `schedule:${scheduleId}:${tickMs}`;
}

/** Validates a schedule id (a string of 1–256 characters without control characters). */
export function validateScheduleId(id: unknown): string {
  return validateId(id, 'id', MAX_SCHEDULE_ID_LENGTH);
}

/**
 * Checks `options` and builds the stored definition; `encode` turns `data` into JSON text (the
 * queue's data codec, so size limits match `submitTask`).
 * @internal
 */
export function buildScheduleDef(
  id: string,
  options: unknown,
  encode: (data: unknown) => string,
): ScheduleDef {
  assertObject(options, 'options');
  const o = options as ScheduleOptions;
  if ((o.every === undefined) === (o.cron === undefined)) {
    throw new ValidationError('schedule needs exactly one of every (seconds) or cron', {
      option: o.every === undefined ? 'every' : 'cron',
    });
  }
  const def: ScheduleDef = { id, data: encode(o.data ?? null), catchUp: false };
  if (o.every !== undefined) {
    const every = assertDuration(o.every, 'every');
    if (every < MIN_EVERY_SECONDS) {
      throw new ValidationError(
        `every must be at least ${MIN_EVERY_SECONDS} s, received ${describeValue(o.every)}`,
        { option: 'every' },
      );
    }
    def.everyMs = Math.round(every * 1000);
    if (o.tz !== undefined) {
      throw new ValidationError('tz applies to cron schedules only', { option: 'tz' });
    }
  } else {
    def.cron = validateCron(o.cron);
    if (o.tz !== undefined) def.tz = validateTz(o.tz);
    cronFor(def); // parse errors surface here, at the edge
    if (nextTick(def, Date.now()) === null) {
      throw new ValidationError(`cron ${JSON.stringify(def.cron)} never matches a future time`, {
        option: 'cron',
      });
    }
  }
  if (o.name !== undefined) def.name = validateTaskName(o.name);
  if (o.catchUp !== undefined) {
    if (typeof o.catchUp !== 'boolean') {
      throw new ValidationError(`catchUp must be a boolean, received ${describeValue(o.catchUp)}`, {
        option: 'catchUp',
      });
    }
    def.catchUp = o.catchUp;
  }
  if (o.misfireGrace !== undefined) {
    def.graceMs = Math.round(assertDuration(o.misfireGrace, 'misfireGrace') * 1000);
  }
  if (o.priority !== undefined) {
    def.priority = assertNumber(o.priority, 'priority', {
      integer: true,
      min: 0,
      max: MAX_PRIORITY,
    });
  }
  if (o.attempts !== undefined) {
    def.attempts = assertNumber(o.attempts, 'attempts', {
      integer: true,
      min: 1,
      max: MAX_ATTEMPTS,
    });
  }
  if (o.timeout !== undefined) def.timeout = assertDuration(o.timeout, 'timeout');
  return def;
}

function validateCron(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_CRON_LENGTH) {
    throw new ValidationError(
      `cron must be a non-empty string of at most ${MAX_CRON_LENGTH} characters, received ${describeValue(v)}`,
      { option: 'cron' },
    );
  }
  return v.trim();
}

function validateTz(v: unknown): string {
  if (typeof v !== 'string' || v === '' || v.length > MAX_TZ_LENGTH) {
    throw new ValidationError(`tz must be an IANA time zone name, received ${describeValue(v)}`, {
      option: 'tz',
    });
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v });
  } catch (e) {
    throw new ValidationError(`tz ${JSON.stringify(v)} is not a known IANA time zone`, {
      option: 'tz',
      cause: e,
    });
  }
  return v;
}

// Parsed expressions, so a scheduler's every round does not re-parse. Bounded: ids are user
// input and a long-running process may see many upserts.
const cronCache = new Map<string, Cron>();
const CRON_CACHE_MAX = 1000;

function cronFor(def: ScheduleDef): Cron {
  const key = `${def.tz ?? ''}\n${def.cron}`;
  let c = cronCache.get(key);
  if (!c) {
    try {
      // No callback: croner only computes times, it starts no timer. UTC unless told, so every
      // process reads the expression the same whatever its TZ.
      c = new Cron(def.cron as string, { timezone: def.tz ?? 'UTC', mode: '5-or-6-parts' });
    } catch (e) {
      throw new ValidationError(
        `cron ${JSON.stringify(def.cron)} is not a valid expression: ${(e as Error).message}`,
        { option: 'cron', cause: e },
      );
    }
    if (cronCache.size >= CRON_CACHE_MAX) cronCache.clear();
    cronCache.set(key, c);
  }
  return c;
}

/** The first tick strictly after `afterMs` (ms since epoch), or null when there is none. @internal */
export function nextTick(def: ScheduleDef, afterMs: number): number | null {
  if (def.everyMs !== undefined) return (Math.floor(afterMs / def.everyMs) + 1) * def.everyMs;
  const d = cronFor(def).nextRun(new Date(afterMs));
  return d ? d.getTime() : null;
}

/** How late (ms) the tick at `tickMs` may start; see {@link ScheduleOptions.misfireGrace}. @internal */
export function graceMs(def: ScheduleDef, tickMs: number): number {
  if (def.graceMs !== undefined) return def.graceMs;
  const following = nextTick(def, tickMs);
  const gap = following === null ? MAX_DEFAULT_GRACE_MS : following - tickMs;
  return Math.min(MAX_DEFAULT_GRACE_MS, Math.max(MIN_DEFAULT_GRACE_MS, gap));
}

/** The part of a definition that decides tick times: an upsert that keeps it keeps the next run. @internal */
export function timingKey(def: ScheduleDef): string {
  return def.everyMs !== undefined ? `every:${def.everyMs}` : `cron:${def.tz ?? ''}:${def.cron}`;
}

/** What one scheduler does with a due schedule: ticks to submit and the next run. @internal */
export interface TickPlan {
  /** Tick times (ms) to submit a task for, oldest first. */
  fire: number[];
  /** The next run after this plan (ms), or null when the schedule has no future tick. */
  next: number | null;
}

/** Ticks handled per plan; a longer backlog (a large `misfireGrace`) continues next round. */
const MAX_TICKS_PER_PLAN = 100;
/** Missed ticks walked one by one before jumping ahead (a fine cron over a long outage). */
const MAX_WALK = 1000;

/**
 * Decides, from the stored next run `due` and the clock, which ticks fire: those at most their
 * grace late; older ones are missed (one fires for them with `catchUp`). Every scheduler may
 * compute a different plan (clocks differ); only one plan is committed, by compare-and-set.
 * @internal
 */
export function planTicks(def: ScheduleDef, due: number, now: number): TickPlan {
  const fire: number[] = [];
  let lastMissed: number | null = null;
  let t: number | null = due;
  let walked = 0;
  while (t !== null && t <= now && fire.length < MAX_TICKS_PER_PLAN) {
    if (now - t <= graceMs(def, t)) {
      if (lastMissed !== null && def.catchUp && fire.length === 0) fire.push(lastMissed);
      fire.push(t);
    } else {
      lastMissed = t;
      if (++walked >= MAX_WALK) {
        // Jump to the ticks near now; the longest default grace is 60 s.
        const from = now - Math.max(MAX_DEFAULT_GRACE_MS, def.graceMs ?? 0) - 1;
        t = nextTick(def, Math.max(t, from));
        walked = 0;
        continue;
      }
    }
    t = nextTick(def, t);
  }
  if (fire.length === 0 && lastMissed !== null && def.catchUp) fire.push(lastMissed);
  return { fire, next: t };
}

/** @internal */
export function toScheduleInfo(
  def: ScheduleDef,
  next: number | null,
  decode: (json: string) => unknown,
): ScheduleInfo {
  const info: ScheduleInfo = {
    id: def.id,
    data: decode(def.data),
    catchUp: def.catchUp,
    next: next === null ? null : new Date(next),
  };
  if (def.everyMs !== undefined) info.every = def.everyMs / 1000;
  if (def.cron !== undefined) info.cron = def.cron;
  if (def.tz !== undefined) info.tz = def.tz;
  if (def.name !== undefined) info.name = def.name;
  if (def.graceMs !== undefined) info.misfireGrace = def.graceMs / 1000;
  if (def.priority !== undefined) info.priority = def.priority;
  if (def.attempts !== undefined) info.attempts = def.attempts;
  if (def.timeout !== undefined) info.timeout = def.timeout;
  return info;
}
