/**
 * Every error azscale throws. Each has a stable `code` (`AZS_…`), a message that names the input
 * at fault, a `context` object with machine-readable fields, and the original error as `cause`.
 *
 * `instanceof` and the `isXxxError()` guards both work when the ESM and the CJS copy of azscale
 * are loaded in one process: membership is decided by a registry-wide symbol and the error code,
 * never by class identity.
 */

const BRAND = Symbol.for('azscale.error');

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export type AzscaleErrorCode =
  | 'AZS_ERROR'
  | 'AZS_VALIDATION'
  | 'AZS_VALUE_TOO_LARGE'
  | 'AZS_SERIALIZATION'
  | 'AZS_BACKEND_UNAVAILABLE'
  | 'AZS_BACKEND'
  | 'AZS_TIMEOUT'
  | 'AZS_CIRCUIT_OPEN'
  | 'AZS_LIMIT_EXCEEDED'
  | 'AZS_BUDGET_EXCEEDED'
  | 'AZS_CONFLICT'
  | 'AZS_NOT_FOUND'
  | 'AZS_CLOSED'
  | 'AZS_CANCELLED'
  | 'AZS_TASK_FAILED'
  | 'AZS_CHILD_TASK_FAILED'
  | 'AZS_UNRECOVERABLE'
  | 'AZS_QUERY_ROUTING'
  | 'AZS_CALLBACK'
  | 'AZS_MISSING_DEPENDENCY'
  | 'AZS_LLM_PROVIDER'
  | 'AZS_TASK_NAME_UNKNOWN'
  | 'AZS_DURABILITY'
  | 'AZS_FORBIDDEN';

/** Options every azscale error accepts. */
export interface AzscaleErrorOptions {
  /** The underlying error, kept as the standard `cause`. */
  cause?: unknown;
  /** Machine-readable fields that describe the failure (never secrets). */
  context?: Record<string, unknown>;
}

interface Branded {
  [BRAND]: true;
  code: string;
  /** Codes this error also counts as (its own code first, then its ancestors'). */
  kinds: readonly string[];
}

function branded(value: unknown): value is Branded {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Partial<Branded>)[BRAND] === true &&
    Array.isArray((value as Partial<Branded>).kinds)
  );
}

function hasKind(value: unknown, code: string): boolean {
  return branded(value) && value.kinds.includes(code);
}

/**
 * Base class of every error azscale throws.
 *
 * @example
 * try { await cache.set('', 'x') } catch (e) { if (isAzscaleError(e)) console.log(e.code) }
 */
export class AzscaleError extends Error {
  /** The code of this class; an instance's `code` equals it. */
  static readonly code: AzscaleErrorCode = 'AZS_ERROR';
  /** Extra codes an instance of this class also counts as (for errors that are two things). */
  static readonly alsoKinds: readonly AzscaleErrorCode[] = [];

  /** Stable, machine-readable error code. */
  readonly code: AzscaleErrorCode;
  /** Machine-readable details (option names, hosts, limits); never contains passwords. */
  readonly context: Record<string, unknown>;
  /** @internal */
  readonly kinds: readonly string[];
  /** @internal */
  readonly [BRAND] = true as const;

  constructor(message: string, options: AzscaleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const ctor = new.target as typeof AzscaleError;
    this.name = ctor.name;
    this.code = ctor.code;
    this.context = options.context ?? {};
    const kinds: string[] = [];
    for (let c: unknown = ctor; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
      const k = c as typeof AzscaleError;
      if (typeof k.code === 'string' && !kinds.includes(k.code)) kinds.push(k.code);
      for (const extra of k.alsoKinds ?? []) if (!kinds.includes(extra)) kinds.push(extra);
      if (k === AzscaleError) break;
    }
    this.kinds = kinds;
  }

  /**
   * Makes `value instanceof ThisClass` true for an azscale error of this class, of a subclass, or
   * one that counts as it through `alsoKinds`; decided by error code, not class identity, so it
   * also holds across the ESM and CJS copies of azscale.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass being tested against
    return hasKind(value, (this as typeof AzscaleError).code);
  }
}

/** A public argument or option is wrong: the message names it, what was expected and what came. */
export class ValidationError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_VALIDATION';
  /** The option or argument at fault, e.g. `ttl` or `id`. */
  readonly option: string | undefined;
  constructor(message: string, options: AzscaleErrorOptions & { option?: string } = {}) {
    super(message, {
      ...options,
      context: { ...(options.option ? { option: options.option } : {}), ...options.context },
    });
    this.option = options.option;
  }
}

/** A value JSON cannot hold (BigInt, a cycle, a function) or stored text that does not parse. */
export class SerializationError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_SERIALIZATION';
}

/**
 * A value is larger than the configured `maxValueBytes`. It is both a validation error and a
 * serialization error: `instanceof ValidationError` and `instanceof SerializationError` hold.
 */
export class ValueTooLargeError extends ValidationError {
  static override readonly code: AzscaleErrorCode = 'AZS_VALUE_TOO_LARGE';
  static override readonly alsoKinds: readonly AzscaleErrorCode[] = ['AZS_SERIALIZATION'];
  /** Size of the encoded value, in bytes. */
  readonly bytes: number;
  /** The limit it exceeded, in bytes. */
  readonly maxBytes: number;
  constructor(what: string, bytes: number, maxBytes: number) {
    super(`${what} is ${bytes} bytes encoded, over the limit maxValueBytes=${maxBytes}`, {
      option: 'maxValueBytes',
      context: { bytes, maxBytes, what },
    });
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/** A backend (Redis, PostgreSQL) could not be reached or refused us. */
export class BackendUnavailableError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_BACKEND_UNAVAILABLE';
}

/**
 * A backend (Redis, PostgreSQL) answered a command with an error about the command or the data
 * (WRONGTYPE, a script error, a constraint violation), as opposed to not being there for us
 * ({@link BackendUnavailableError}). The message keeps the server's error code and text (e.g.
 * `WRONGTYPE ...`, SQLSTATE in `context.sqlState`) but never the command's arguments, the values
 * written or a password; `cause` is a sanitised copy of the original error (name, message, code).
 */
export class BackendError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_BACKEND';
}

/** An operation ran past its time limit. */
export class TimeoutError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_TIMEOUT';
}

/** A circuit breaker is open and no fallback was given. */
export class CircuitOpenError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_CIRCUIT_OPEN';
}

/** A concurrency, queue or rate limit refused the call. `retryAfter` is in seconds when known. */
export class LimitExceededError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_LIMIT_EXCEEDED';
  /** Seconds after which a retry may succeed, when the limiter knows. */
  readonly retryAfter: number | undefined;
  constructor(message: string, options: AzscaleErrorOptions & { retryAfter?: number } = {}) {
    super(message, {
      ...options,
      context: {
        ...(options.retryAfter !== undefined ? { retryAfter: options.retryAfter } : {}),
        ...options.context,
      },
    });
    this.retryAfter = options.retryAfter;
  }
}

/** A spend budget is used up. */
export class BudgetExceededError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_BUDGET_EXCEEDED';
}

/** An optimistic update lost every retry to concurrent writers. */
export class ConflictError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_CONFLICT';
}

/** A thing looked up by id does not exist. */
export class NotFoundError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_NOT_FOUND';
}

/** The instance was closed and cannot serve the call. */
export class ClosedError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_CLOSED';
}

/** An operation or task was cancelled. */
export class CancelledError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_CANCELLED';
}

/** A background task ended failed; `cause` holds (a copy of) the handler's error. */
export class TaskFailedError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_TASK_FAILED';
}

/**
 * A flow's parent task failed because a child failed for good (or was cancelled); the message
 * and `context.child` name the child. Also a {@link TaskFailedError}.
 */
export class ChildTaskFailedError extends TaskFailedError {
  static override readonly code: AzscaleErrorCode = 'AZS_CHILD_TASK_FAILED';
}

/** Thrown by a task handler to fail the task at once, without further attempts. */
export class UnrecoverableError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_UNRECOVERABLE';
}

/** A statement was sent to the wrong kind of node (e.g. a write with `role: 'read'`). */
export class QueryRoutingError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_QUERY_ROUTING';
}

/** True for any error thrown by azscale (ESM or CJS copy). */
export function isAzscaleError(e: unknown): e is AzscaleError {
  return branded(e);
}
/** True for a {@link ValidationError} (including {@link ValueTooLargeError}). */
export function isValidationError(e: unknown): e is ValidationError {
  return hasKind(e, 'AZS_VALIDATION');
}
/** True for a {@link ValueTooLargeError}. */
export function isValueTooLargeError(e: unknown): e is ValueTooLargeError {
  return hasKind(e, 'AZS_VALUE_TOO_LARGE');
}
/** True for a {@link SerializationError} (including {@link ValueTooLargeError}). */
export function isSerializationError(e: unknown): e is SerializationError {
  return hasKind(e, 'AZS_SERIALIZATION');
}
/** True for a {@link BackendUnavailableError}. */
export function isBackendUnavailableError(e: unknown): e is BackendUnavailableError {
  return hasKind(e, 'AZS_BACKEND_UNAVAILABLE');
}
/** True for a {@link TimeoutError}. */
export function isTimeoutError(e: unknown): e is TimeoutError {
  return hasKind(e, 'AZS_TIMEOUT');
}
/** True for a {@link CircuitOpenError}. */
export function isCircuitOpenError(e: unknown): e is CircuitOpenError {
  return hasKind(e, 'AZS_CIRCUIT_OPEN');
}
/** True for a {@link LimitExceededError}. */
export function isLimitExceededError(e: unknown): e is LimitExceededError {
  return hasKind(e, 'AZS_LIMIT_EXCEEDED');
}
/** True for a {@link BudgetExceededError}. */
export function isBudgetExceededError(e: unknown): e is BudgetExceededError {
  return hasKind(e, 'AZS_BUDGET_EXCEEDED');
}
/** True for a {@link ConflictError}. */
export function isConflictError(e: unknown): e is ConflictError {
  return hasKind(e, 'AZS_CONFLICT');
}
/** True for a {@link NotFoundError}. */
export function isNotFoundError(e: unknown): e is NotFoundError {
  return hasKind(e, 'AZS_NOT_FOUND');
}
/** True for a {@link ClosedError}. */
export function isClosedError(e: unknown): e is ClosedError {
  return hasKind(e, 'AZS_CLOSED');
}
/** True for a {@link CancelledError}. */
export function isCancelledError(e: unknown): e is CancelledError {
  return hasKind(e, 'AZS_CANCELLED');
}
/** True for a {@link TaskFailedError}. */
export function isTaskFailedError(e: unknown): e is TaskFailedError {
  return hasKind(e, 'AZS_TASK_FAILED');
}
/** True for a {@link ChildTaskFailedError}. */
export function isChildTaskFailedError(e: unknown): e is ChildTaskFailedError {
  return hasKind(e, 'AZS_CHILD_TASK_FAILED');
}
/** True for an {@link UnrecoverableError}. */
export function isUnrecoverableError(e: unknown): e is UnrecoverableError {
  return hasKind(e, 'AZS_UNRECOVERABLE');
}
/** True for a {@link QueryRoutingError}. */
export function isQueryRoutingError(e: unknown): e is QueryRoutingError {
  return hasKind(e, 'AZS_QUERY_ROUTING');
}

/** True for {@link BackendError} (ESM or CJS copy). */
export function isBackendError(e: unknown): e is BackendError {
  return hasKind(e, 'AZS_BACKEND');
}

/** Describes a received value for an error message without dumping it whole. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${typeof value} ${String(value)}`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
  }
}

/**
 * A function the caller handed to azscale (an update function, a loader) threw. Its error is the
 * `cause`; nothing was written on its behalf.
 */
export class CallbackError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_CALLBACK';
}
/** True for a {@link CallbackError}. */
export function isCallbackError(e: unknown): e is CallbackError {
  return hasKind(e, 'AZS_CALLBACK');
}

/**
 * A caller waited longer than a limiter's `queueTimeout` for a slot. It is both a limit error
 * and a timeout: `instanceof LimitExceededError` and `instanceof TimeoutError` hold.
 */
export class QueueTimeoutError extends LimitExceededError {
  static override readonly alsoKinds: readonly AzscaleErrorCode[] = ['AZS_TIMEOUT'];
  // It shares its parent's code, so membership also checks the name.
  /** Makes `value instanceof QueueTimeoutError` true exactly when {@link isQueueTimeoutError} is. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return isQueueTimeoutError(value);
  }
}
/** True for a {@link QueueTimeoutError}. */
export function isQueueTimeoutError(e: unknown): e is QueueTimeoutError {
  return e instanceof Error && e.name === 'QueueTimeoutError' && hasKind(e, 'AZS_LIMIT_EXCEEDED');
}

/**
 * An optional peer package that a subpath needs is not installed (`ai` for `azscale/ai`, a web
 * framework for `azscale/express`, `fastify`, `nestjs`, `hono`). `context.package` names it; the
 * message says what to install.
 */
export class MissingDependencyError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_MISSING_DEPENDENCY';
}
/** True for a {@link MissingDependencyError}. */
export function isMissingDependencyError(e: unknown): e is MissingDependencyError {
  return hasKind(e, 'AZS_MISSING_DEPENDENCY');
}

/**
 * An LLM provider answered with an error status, or broke off a streamed answer. `status` is the
 * HTTP status (0 when the connection failed or the stream broke); `retryAfter` is in seconds when
 * the provider sent `Retry-After`.
 */
export class LLMProviderError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_LLM_PROVIDER';
  /** HTTP status, 0 for a network failure or a broken stream. */
  readonly status: number;
  /** Seconds the provider asked to wait, when it said. */
  readonly retryAfter: number | undefined;
  constructor(
    message: string,
    options: AzscaleErrorOptions & { status: number; retryAfter?: number },
  ) {
    super(message, {
      ...options,
      context: {
        status: options.status,
        ...(options.retryAfter !== undefined ? { retryAfter: options.retryAfter } : {}),
        ...options.context,
      },
    });
    this.status = options.status;
    this.retryAfter = options.retryAfter;
  }
}
/** True for an {@link LLMProviderError}. */
export function isLLMProviderError(e: unknown): e is LLMProviderError {
  return hasKind(e, 'AZS_LLM_PROVIDER');
}

/**
 * A request may not do what it asked: a dashboard action while the dashboard is read-only, or
 * without the authorisation (`auth`) or the anti-CSRF header it needs. HTTP 403.
 */
export class ForbiddenError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_FORBIDDEN';
}
/** True for a {@link ForbiddenError}. */
export function isForbiddenError(e: unknown): e is ForbiddenError {
  return hasKind(e, 'AZS_FORBIDDEN');
}

/**
 * A worker took a task whose `name` has no handler (no entry in `handlers`, or an unnamed task
 * and no default `handler`). The task fails at once, without retries, and is dead-lettered;
 * `context.name` holds the name (absent for an unnamed task).
 */
export class UnknownTaskNameError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_TASK_NAME_UNKNOWN';
}
/** True for an {@link UnknownTaskNameError}. */
export function isUnknownTaskNameError(e: unknown): e is UnknownTaskNameError {
  return hasKind(e, 'AZS_TASK_NAME_UNKNOWN');
}

/**
 * A write was applied by the primary but fewer replicas than `durability.replicas` confirmed it
 * within `durability.timeout` (Redis `WAIT`/`WAITAOF`), or the connection changed before they
 * could confirm. The write may or may not survive a failover: do not treat it as lost (it may
 * well be there) nor as durable. `acknowledged` is how many replicas confirmed (0 when unknown),
 * `required` how many were asked for.
 */
export class DurabilityError extends AzscaleError {
  static override readonly code: AzscaleErrorCode = 'AZS_DURABILITY';
  /** Replicas that confirmed the write (0 when the connection changed before they could). */
  readonly acknowledged: number;
  /** Replicas `durability.replicas` asked for. */
  readonly required: number;
  constructor(
    message: string,
    options: AzscaleErrorOptions & { acknowledged: number; required: number },
  ) {
    super(message, {
      ...options,
      context: {
        acknowledged: options.acknowledged,
        required: options.required,
        ...options.context,
      },
    });
    this.acknowledged = options.acknowledged;
    this.required = options.required;
  }
}
/** True for a {@link DurabilityError}. */
export function isDurabilityError(e: unknown): e is DurabilityError {
  return hasKind(e, 'AZS_DURABILITY');
}
