import { ValidationError, describeValue } from '../core/errors.js';
import { assertNumber } from '../core/validate.js';

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

/** A positive duration in seconds, or `fallback` when undefined. The error names `option`. */
export function seconds(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  return assertNumber(value, option, { positive: true });
}

/** A positive integer, or `fallback` when undefined. */
export function positiveInt(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  return assertNumber(value, option, { integer: true, min: 1 });
}

/**
 * Sleeps `ms`; rejects with `signal.reason` when aborted. The timer is not unref'd: a caller is
 * waiting on it, and an unref'd timer would let the process exit under an await.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

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
