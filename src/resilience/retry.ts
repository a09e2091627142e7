import {
  ConstantBackoff,
  ExponentialBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  TaskCancelledError,
  TimeoutStrategy,
  decorrelatedJitterGenerator,
  handleAll,
  handleWhen,
  noJitterGenerator,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
} from 'cockatiel';
import { CancelledError, TimeoutError, ValidationError, describeValue } from '../core/errors.js';
import { assertFunction, assertNumber, assertOneOf } from '../core/validate.js';
import { MAX_TIMER_MS, assertDuration, setLongTimeout } from '../core/timers.js';
import { MAX_TIMER_SECONDS, assertSignal, optionsObject } from './options.js';

/**
 * A wrapped function that can also be awaited directly: `await retry(fn, o)` runs `fn` once
 * (with no arguments) under the policy, `retry(fn, o)(...args)` runs it with arguments, as often
 * as called. Awaiting the same object twice reuses the first run.
 *
 * Note: because it is awaitable, returning it from an `async` function runs it; store it in a
 * variable or an object property to keep the wrapper.
 */
export type Resilient<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) &
  PromiseLike<Awaited<R>>;

function awaitable<A extends unknown[], R>(
  run: (self: unknown, args: A) => Promise<Awaited<R>>,
  name: string,
): Resilient<A, R> {
  let once: Promise<Awaited<R>> | undefined;
  const f = function (this: unknown, ...args: A): Promise<Awaited<R>> {
    return run(this, args);
  };
  Object.defineProperty(f, 'name', { value: name, configurable: true });
  Object.defineProperty(f, 'then', {
    value<T1 = Awaited<R>, T2 = never>(
      onFulfilled?: ((value: Awaited<R>) => T1 | PromiseLike<T1>) | null,
      onRejected?: ((reason: unknown) => T2 | PromiseLike<T2>) | null,
    ): Promise<T1 | T2> {
      once ??= run(undefined, [] as unknown as A);
      return once.then(onFulfilled, onRejected);
    },
  });
  return f as Resilient<A, R>;
}

/** How long to wait between attempts. */
export interface BackoffOptions {
  /** `exponential` doubles (by `exponent`) the delay each attempt; `constant` keeps it. @default 'exponential' */
  type?: 'exponential' | 'constant';
  /** Seconds before the first retry (0 to 2147483, one Node timer). @default 0.128 */
  initialDelay?: number;
  /** Longest delay in seconds (exponential; 0 to 2147483, one Node timer). @default 30 */
  maxDelay?: number;
  /** Growth factor per attempt (exponential). @default 2 */
  exponent?: number;
  /** Randomise delays (decorrelated jitter) so callers do not retry in lock step. @default true */
  jitter?: boolean;
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Attempts in total, the first call included (`1` = no retry). @default 3 */
  attempts?: number;
  /**
   * Delay between attempts: `'exponential'` (default, with jitter), `'constant'`, a number of
   * seconds (constant, at most 2147483), or {@link BackoffOptions}.
   * @default 'exponential'
   */
  backoff?: 'exponential' | 'constant' | number | BackoffOptions;
  /** Which errors are worth another attempt; others are thrown at once. @default every error */
  isRetryable?: (error: unknown) => boolean;
  /**
   * Stops retrying (and waiting) when aborted: the last error is thrown, or a
   * {@link CancelledError} when it was aborted before the first attempt.
   */
  signal?: AbortSignal;
  /** Called before each retry with the attempt number (1 = first retry), the error and the delay in seconds. */
  onRetry?: (info: { attempt: number; error: unknown; delay: number }) => void;
}

// cockatiel waits between attempts with one Node timer, which fires after 1 ms past 2^31-1 ms:
// longer delays are refused rather than silently turned into no delay at all.
function delay(value: unknown, option: string): number {
  return assertDuration(value, option, { allowZero: true, max: MAX_TIMER_SECONDS });
}

function backoffFrom(raw: RetryOptions['backoff']): IBackoffFactory<IRetryBackoffContext<unknown>> {
  if (raw === undefined || raw === 'exponential') {
    return new ExponentialBackoff({
      initialDelay: 128,
      maxDelay: 30_000,
      generator: decorrelatedJitterGenerator,
    });
  }
  if (raw === 'constant') return new ConstantBackoff(128);
  if (typeof raw === 'number') {
    return new ConstantBackoff(delay(raw, 'backoff') * 1000);
  }
  const o = optionsObject<BackoffOptions>(raw, 'backoff');
  const type =
    o.type === undefined
      ? 'exponential'
      : assertOneOf(o.type, 'backoff.type', ['exponential', 'constant']);
  const initial =
    (o.initialDelay === undefined ? 0.128 : delay(o.initialDelay, 'backoff.initialDelay')) * 1000;
  if (type === 'constant') return new ConstantBackoff(initial);
  const maxDelay = (o.maxDelay === undefined ? 30 : delay(o.maxDelay, 'backoff.maxDelay')) * 1000;
  const exponent =
    o.exponent === undefined ? 2 : assertNumber(o.exponent, 'backoff.exponent', { min: 1 });
  if (o.jitter !== undefined && typeof o.jitter !== 'boolean') {
    throw new ValidationError(
      `backoff.jitter must be a boolean, received ${describeValue(o.jitter)}`,
      {
        option: 'backoff.jitter',
      },
    );
  }
  // cockatiel's generators have different state types; both fit the factory's contract.
  return o.jitter === false
    ? new ExponentialBackoff({
        initialDelay: initial,
        maxDelay,
        exponent,
        generator: noJitterGenerator,
      })
    : new ExponentialBackoff({
        initialDelay: initial,
        maxDelay,
        exponent,
        generator: decorrelatedJitterGenerator,
      });
}

/**
 * Retries `fn` on failure, on cockatiel's retry policy: `attempts` in total, with exponential
 * backoff and jitter by default. The last error is thrown when every attempt failed.
 *
 * @example
 * const answer = await retry(() => model.invoke(prompt), { attempts: 4, backoff: { initialDelay: 0.5 } });
 * const fetchUser = retry((id: string) => api.user(id), { attempts: 3 }); // a reusable wrapper
 */
export function retry<A extends unknown[], R>(
  fn: (...args: A) => R | PromiseLike<R>,
  options: RetryOptions = {},
): Resilient<A, R> {
  assertFunction(fn, 'fn');
  const o = optionsObject<RetryOptions>(options, 'options');
  const attempts =
    o.attempts === undefined ? 3 : assertNumber(o.attempts, 'attempts', { integer: true, min: 1 });
  const isRetryable =
    o.isRetryable === undefined
      ? undefined
      : assertFunction<(e: unknown) => boolean>(o.isRetryable, 'isRetryable');
  const onRetry =
    o.onRetry === undefined
      ? undefined
      : assertFunction<NonNullable<RetryOptions['onRetry']>>(o.onRetry, 'onRetry');
  const signal = assertSignal(o.signal);
  const policy = cockatielRetry(isRetryable ? handleWhen((e) => isRetryable(e)) : handleAll, {
    maxAttempts: attempts - 1,
    backoff: backoffFrom(o.backoff),
  });
  if (onRetry) {
    policy.onRetry((r) =>
      onRetry({
        attempt: r.attempt,
        error: 'error' in r ? r.error : r.value,
        delay: r.delay / 1000,
      }),
    );
  }
  return awaitable<A, R>(async (self, args): Promise<Awaited<R>> => {
    if (signal?.aborted) throw new CancelledError('retry was aborted', { cause: signal.reason });
    try {
      return (await policy.execute(() => fn.apply(self, args), signal)) as unknown as Awaited<R>;
    } catch (e) {
      if (e instanceof TaskCancelledError) {
        throw new CancelledError('retry was aborted', { cause: signal?.reason ?? e });
      }
      throw e;
    }
  }, fn.name);
}

/** Options of {@link withTimeout}. */
export interface TimeoutOptions {
  /**
   * `aggressive` rejects at the deadline even if `fn` ignores its signal; `cooperative` only
   * aborts the signal and waits for `fn` to settle. @default 'aggressive'
   */
  strategy?: 'aggressive' | 'cooperative';
}

/**
 * Limits `fn` to `seconds` (at most 10 years; past 24.8 days timers are chained), on
 * cockatiel's timeout policy: past it the call rejects with
 * {@link TimeoutError}. `fn` is called with its own arguments followed by an AbortSignal that
 * aborts at the deadline, so it can stop its work (e.g. pass it to `fetch`).
 * Exported as both `withTimeout` and `timeout`.
 *
 * @example
 * const reply = await withTimeout((signal) => fetch(url, { signal }), 10);
 * const search = withTimeout((q: string, signal?: AbortSignal) => api.search(q, { signal }), 5);
 */
export function withTimeout<A extends unknown[], R>(
  fn: (...args: [...A, AbortSignal]) => R | PromiseLike<R>,
  seconds: number,
  options: TimeoutOptions = {},
): Resilient<A, R> {
  assertFunction(fn, 'fn');
  const s = assertDuration(seconds, 'seconds');
  const o = optionsObject<TimeoutOptions>(options, 'options');
  const strategy =
    o.strategy === undefined
      ? 'aggressive'
      : assertOneOf(o.strategy, 'strategy', ['aggressive', 'cooperative']);
  const timedOut = (cause: unknown) =>
    new TimeoutError(`call ${fn.name ? `${fn.name} ` : ''}took longer than ${s} s`, {
      cause,
      context: { seconds: s },
    });
  if (s * 1000 > MAX_TIMER_MS) {
    // Past one Node timer (24.8 days) cockatiel's timer would fire after 1 ms: chain timers.
    return awaitable<A, R>(
      (self, args) => longTimeout(fn, self, args, s * 1000, strategy, timedOut),
      fn.name,
    );
  }
  const policy = cockatielTimeout(
    s * 1000,
    strategy === 'aggressive' ? TimeoutStrategy.Aggressive : TimeoutStrategy.Cooperative,
  );
  return awaitable<A, R>(async (self, args): Promise<Awaited<R>> => {
    try {
      return (await policy.execute((_ctx, signal) =>
        fn.apply(self, [...args, signal] as [...A, AbortSignal]),
      )) as unknown as Awaited<R>;
    } catch (e) {
      if (e instanceof TaskCancelledError) throw timedOut(e);
      throw e;
    }
  }, fn.name);
}

// withTimeout for durations one Node timer cannot hold, with cockatiel's semantics: the signal
// aborts at the deadline; `aggressive` also rejects then, `cooperative` waits for `fn`.
function longTimeout<A extends unknown[], R>(
  fn: (...args: [...A, AbortSignal]) => R | PromiseLike<R>,
  self: unknown,
  args: A,
  ms: number,
  strategy: 'aggressive' | 'cooperative',
  timedOut: (cause: unknown) => TimeoutError,
): Promise<Awaited<R>> {
  const ac = new AbortController();
  return new Promise<Awaited<R>>((resolve, reject) => {
    const timer = setLongTimeout(() => {
      ac.abort(timedOut(undefined));
      if (strategy === 'aggressive') reject(timedOut(undefined));
    }, ms);
    Promise.resolve()
      .then(() => fn.apply(self, [...args, ac.signal] as [...A, AbortSignal]))
      .then(
        (v) => {
          timer.clear();
          resolve(v as Awaited<R>);
        },
        (e) => {
          timer.clear();
          reject(e);
        },
      );
  });
}

/** Same as {@link withTimeout}. */
export const timeout = withTimeout;
