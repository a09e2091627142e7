import { ValidationError, describeValue } from './errors.js';
import { MAX_TIMER_MS, assertDuration } from './timers.js';
import { assertNumber } from './validate.js';

/** Connection defaults, all overridable. */
export interface RedisConnectionOptions {
  /**
   * Seconds to wait for a connection (TCP + AUTH + ready check) before failing with
   * {@link BackendUnavailableError}. At most {@link MAX_TIMEOUT_SECONDS}.
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Seconds a single command may take before it fails (protects against a hung server).
   * `0` disables the limit (only for blocking commands on a dedicated connection). At most
   * {@link MAX_TIMEOUT_SECONDS}.
   * @default 5
   */
  commandTimeout?: number;
  /**
   * How many reconnections a command may wait through before it fails.
   * @default 1
   */
  maxRetriesPerRequest?: number;
  /**
   * Queue commands while disconnected instead of failing them at once. Off by default so that a
   * dead Redis fails calls fast instead of growing an unbounded in-memory queue.
   * @default false
   */
  offlineQueue?: boolean;
  /**
   * Connection name shown by `CLIENT LIST` (set on every connection we create, Cluster nodes
   * included), so operators can count a service's connections.
   * @default 'azscale'
   */
  connectionName?: string;
}

/** Largest `connectTimeout`/`commandTimeout` (seconds): what one Node timer holds (~24.8 days). */
export const MAX_TIMEOUT_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** The `CLIENT SETNAME` of connections we create when no `connectionName` is given. */
export const DEFAULT_CONNECTION_NAME = 'azscale';

/** @internal The defaults of a connection we create. */
export const CONNECTION_DEFAULTS = {
  connectTimeout: 5,
  commandTimeout: 5,
  maxRetriesPerRequest: 1,
  offlineQueue: false,
};

/**
 * Checks connection options as {@link RedisConnection} will use them: timeouts in seconds within
 * what one Node timer holds, a non-negative retry count, a `CLIENT SETNAME`-safe name.
 * @throws ValidationError naming the option.
 */
export function validateConnectionOptions(o: RedisConnectionOptions): void {
  // ioredis arms one Node timer per timeout: past 2^31-1 ms it would fire after 1 ms.
  if (o.connectTimeout !== undefined)
    assertDuration(o.connectTimeout, 'connectTimeout', { max: MAX_TIMEOUT_SECONDS });
  if (o.commandTimeout !== undefined)
    assertDuration(o.commandTimeout, 'commandTimeout', {
      max: MAX_TIMEOUT_SECONDS,
      allowZero: true,
    });
  if (o.maxRetriesPerRequest !== undefined)
    assertNumber(o.maxRetriesPerRequest, 'maxRetriesPerRequest', { integer: true, min: 0 });
  if (o.offlineQueue !== undefined && typeof o.offlineQueue !== 'boolean') {
    throw new ValidationError(
      `offlineQueue must be a boolean, received ${describeValue(o.offlineQueue)}`,
      { option: 'offlineQueue' },
    );
  }
  if (
    o.connectionName !== undefined &&
    (typeof o.connectionName !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(o.connectionName))
  ) {
    // CLIENT SETNAME refuses spaces and newlines; fail here, not on every reconnect.
    throw new ValidationError(
      `connectionName must be 1-128 printable characters without spaces, received ${describeValue(o.connectionName)}`,
      { option: 'connectionName' },
    );
  }
}
