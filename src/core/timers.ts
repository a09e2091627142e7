import { ValidationError, describeValue } from './errors.js';

/**
 * Timers and durations shared by every module.
 *
 * Node's `setTimeout` fires after 1 ms for any delay above 2^31-1 ms (24.8 days) and warns with
 * `TimeoutOverflowWarning`, so a 30-day task timeout would fail at once. {@link setLongTimeout}
 * chains timers past that limit, and {@link assertDuration} rejects what no timer could honour.
 */

/** The largest delay (ms) one Node timer can hold before it overflows and fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The largest duration (seconds) any azscale duration option accepts unless its own docs say
 * otherwise: 10 years. Larger values are rejected with a `ValidationError` naming the option.
 */
export const MAX_DURATION_SECONDS = 10 * 365 * 24 * 3600;

/** A cancellable timer that may span more than one Node timer. */
export interface LongTimer {
  /** Cancels the timer; calling it again, or after it fired, does nothing. */
  clear(): void;
}

/**
 * Like `setTimeout(fn, ms)` but honours any finite delay: delays above {@link MAX_TIMER_MS} are
 * chained. The timer does not keep the process alive when `unref` is true.
 */
export function setLongTimeout(fn: () => void, ms: number, unref = false): LongTimer {
  let handle: ReturnType<typeof setTimeout> | undefined;
  let cleared = false;
  const deadline = Date.now() + Math.max(0, ms);
  const arm = (remaining: number) => {
    handle = setTimeout(
      () => {
        if (cleared) return;
        const left = deadline - Date.now();
        if (left > 0 && remaining > MAX_TIMER_MS) arm(left);
        else fn();
      },
      Math.min(Math.max(0, remaining), MAX_TIMER_MS),
    );
    if (unref) handle.unref?.();
  };
  arm(Math.max(0, ms));
  return {
    clear() {
      cleared = true;
      if (handle !== undefined) clearTimeout(handle);
    },
  };
}

/**
 * Resolves after `ms` milliseconds (any finite size), or rejects with the signal's reason as
 * soon as `signal` aborts.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      timer.clear();
      reject(signal?.reason);
    };
    const timer = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Options for {@link assertDuration}. */
export interface DurationRule {
  /** Largest accepted value, in the unit of the option. @default MAX_DURATION_SECONDS (or its ms) */
  max?: number;
  /** Accept 0. @default false */
  allowZero?: boolean;
  /** The unit of the value: option names ending in `Ms` are milliseconds. @default 'seconds' */
  unit?: 'seconds' | 'ms';
}

/**
 * Throws a `ValidationError` naming `option` unless `value` is a finite duration greater than
 * zero (or zero with `allowZero`) and at most `rule.max`. Returns the value unchanged.
 */
export function assertDuration(value: unknown, option: string, rule: DurationRule = {}): number {
  const unit = rule.unit ?? 'seconds';
  const max = rule.max ?? (unit === 'ms' ? MAX_DURATION_SECONDS * 1000 : MAX_DURATION_SECONDS);
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < 0 ||
    (value === 0 && !rule.allowZero) ||
    value > max
  ) {
    throw new ValidationError(
      `${option} must be a duration in ${unit} ${rule.allowZero ? '>= 0' : '> 0'} and <= ${max}, received ${describeValue(value)}`,
      { option, context: { max } },
    );
  }
  return value;
}

/** Like {@link assertDuration} but `undefined` passes through (for optional options). */
export function optionalDuration(
  value: unknown,
  option: string,
  rule: DurationRule = {},
): number | undefined {
  return value === undefined ? undefined : assertDuration(value, option, rule);
}
