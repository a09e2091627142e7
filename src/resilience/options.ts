import { ValidationError, describeValue } from '../core/errors.js';
import { MAX_TIMER_MS, assertDuration, sleep as longSleep } from '../core/timers.js';
import { assertNumber } from '../core/validate.js';

/**
 * The largest value (seconds) of an option that ends up as one Node timer inside a library we
 * build on (cockatiel's retry delays, undici's socket timeouts): 2^31-1 ms, about 24.8 days.
 * Beyond it Node fires the timer after 1 ms, so such options are rejected instead.
 */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** Throws unless `options` is a plain object (or undefined). Returns `{}` for undefined. */
export function optionsObject<T extends object>(options: unknown, what: string): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`${what} must be an object, received ${describeValue(options)}`, {
      option: what,
    });
  }
  return options as Partial<T>;
}

/**
 * A positive duration in seconds (at most `max`, 10 years by default), or `fallback` when
 * undefined. The error names `option` and its maximum.
 */
export function seconds(value: unknown, option: string, fallback: number, max?: number): number {
  if (value === undefined) return fallback;
  return assertDuration(value, option, max === undefined ? {} : { max });
}

/** A positive integer, or `fallback` when undefined. */
export function positiveInt(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  return assertNumber(value, option, { integer: true, min: 1 });
}

/**
 * Sleeps `ms` (any finite size: timers past 2^31-1 ms are chained); rejects with
 * `signal.reason` when aborted. The timer is not unref'd: a caller is waiting on it, and an
 * unref'd timer would let the process exit under an await.
 */
export const sleep: (ms: number, signal?: AbortSignal) => Promise<void> = longSleep;

/** Throws unless `signal` is an AbortSignal (or undefined). */
export function assertSignal(signal: unknown, option = 'signal'): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (
    typeof signal !== 'object' ||
    signal === null ||
    typeof (signal as AbortSignal).aborted !== 'boolean' ||
    typeof (signal as AbortSignal).addEventListener !== 'function'
  ) {
    throw new ValidationError(
      `${option} must be an AbortSignal, received ${describeValue(signal)}`,
      {
        option,
      },
    );
  }
  return signal as AbortSignal;
}
