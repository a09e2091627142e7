import {
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  isBrokenCircuitError,
} from 'cockatiel';
import { toBackendError } from '../core/backend-errors.js';
import {
  AzscaleError,
  BackendUnavailableError,
  describeValue,
  isBackendUnavailableError,
  isClosedError,
  isSerializationError,
  isValidationError,
} from '../core/errors.js';
import type { Emitter } from '../core/events.js';
import type { CounterHandle } from '../core/metrics.js';
import type { CacheCircuitOptions, CacheEvents } from './options.js';
import { isRedisReplyError } from './reply-error.js';
import { type CacheStore, hasLocalEntries } from './store.js';

/**
 * @internal Milliseconds a public call may still spend waiting on the store: every backend call
 * of one public call draws from it, so get + load + set together never wait longer than
 * `backendTimeout`.
 */
export interface Budget {
  leftMs: number;
}

/** @internal What the remote tier reports to. */
export interface RemoteTierDeps {
  readonly events: Emitter<CacheEvents>;
  readonly backendErrors: CounterHandle;
  readonly circuitOpens: CounterHandle;
}

/**
 * @internal Every call to the store goes through here: bounded by `backendTimeout` (and the
 * call's budget), behind the circuit, with failures turned into azscale errors that degrade or
 * throw as `onBackendError` says.
 */
export class RemoteTier {
  /** Milliseconds a store call may take: a little under `backendTimeout`. */
  readonly timeoutMs: number;
  /** An in-process store (see `CacheLocalEntries`) cannot hang: its calls run without a timer. */
  private readonly direct: boolean;
  private readonly circuit: CircuitBreakerPolicy | undefined;
  private readonly disposers: { dispose(): void }[] = [];

  constructor(
    readonly store: CacheStore,
    /** Seconds, as configured (for messages). */
    readonly backendTimeout: number,
    readonly onBackendError: 'degrade' | 'throw',
    circuit: Required<CacheCircuitOptions> | undefined,
    private readonly deps: RemoteTierDeps,
  ) {
    // Give up a little before the bound (5%, at most 50 ms) so that timer lateness and the
    // fallback work still finish inside backendTimeout as the caller measures it.
    this.direct = hasLocalEntries(store);
    const boundMs = backendTimeout * 1000;
    this.timeoutMs = Math.max(1, Math.floor(boundMs - Math.min(50, boundMs * 0.05)));
    if (circuit !== undefined) {
      const policy = circuitBreaker(
        handleWhen((e) => isBackendUnavailableError(e)),
        {
          halfOpenAfter: Math.round(circuit.halfOpenAfter * 1000),
          breaker: new ConsecutiveBreaker(circuit.threshold),
        },
      );
      this.circuit = policy;
      this.disposers.push(
        policy.onBreak(() => {
          deps.circuitOpens.inc();
          deps.events.emit('circuitOpen');
        }),
        policy.onReset(() => deps.events.emit('circuitClose')),
      );
    }
  }

  /** `'memory'`, `'redis'` or a custom store's kind. */
  get backend(): string {
    return this.store.kind;
  }

  /** A fresh budget for one public call. */
  newBudget(): Budget {
    return { leftMs: this.timeoutMs };
  }

  /** Runs a store call under the timeout and the circuit; failures become AzscaleErrors. */
  guarded<T>(fn: () => Promise<T>, b?: Budget): Promise<T> {
    if (this.direct) return fn().catch((e: unknown) => Promise.reject(this.backendFailure(e)));
    let ms = this.timeoutMs;
    if (b !== undefined) {
      if (b.leftMs < 1) return Promise.reject(this.timeoutError('call budget used up'));
      ms = Math.min(ms, b.leftMs);
    }
    const t0 = performance.now();
    // The deadline counts from here: time spent waiting on a half-open circuit's trial call
    // comes out of this call's allowance too.
    const deadline = t0 + ms;
    const run = () => {
      const left = deadline - performance.now();
      if (left < 1) return Promise.reject(this.timeoutError('call'));
      return withTimeout(fn(), left, () => this.timeoutError('call'));
    };
    const p = this.circuit ? this.circuit.execute(run) : run();
    return p.then(
      (v) => {
        if (b !== undefined) b.leftMs -= performance.now() - t0;
        return v;
      },
      (e: unknown) => {
        if (b !== undefined) b.leftMs -= performance.now() - t0;
        throw this.backendFailure(e);
      },
    );
  }

  /** {@link guarded}, then either the fallback (degrade) or a throw, with event and metric. */
  async degrade<T, F>(op: string, fn: () => Promise<T>, fallback: F, b?: Budget): Promise<T | F> {
    try {
      return await this.guarded(fn, b);
    } catch (e) {
      // Our own input and lifecycle errors are the caller's; anything the backend failed with
      // (unreachable, timed out, or a reply error such as WRONGTYPE) degrades or throws.
      if (isValidationError(e) || isSerializationError(e) || isClosedError(e)) throw e;
      const degraded = this.onBackendError === 'degrade';
      this.reportBackendError(op, e, degraded);
      if (!degraded) throw e;
      return fallback;
    }
  }

  /** Counts a backend failure and emits `backendError`. */
  reportBackendError(op: string, e: unknown, degraded: boolean): void {
    this.deps.backendErrors.inc();
    if (this.deps.events.has('backendError')) {
      const error = e instanceof Error ? e : new Error(String(e));
      this.deps.events.emit('backendError', { operation: op, error, degraded });
    }
  }

  /** The error of a call that ran out of time. */
  timeoutError(op: string): BackendUnavailableError {
    return new BackendUnavailableError(
      `cache backend (${this.backend}) did not answer within backendTimeout=${this.backendTimeout} s (${op})`,
      { context: { backend: this.backend, timeout: this.backendTimeout } },
    );
  }

  /** Stops the circuit's listeners. */
  dispose(): void {
    for (const d of this.disposers) d.dispose();
    this.disposers.length = 0;
  }

  /** What a failed store call throws: always an azscale error, with no command arguments. */
  private backendFailure(e: unknown): AzscaleError {
    if (isBrokenCircuitError(e)) {
      return new BackendUnavailableError(
        `cache backend (${this.backend}) is skipped: circuit open after repeated failures`,
        { context: { backend: this.backend, circuit: 'open' } },
      );
    }
    if (e instanceof AzscaleError) return e;
    if (isRedisReplyError(e)) return toBackendError(e, { op: 'cache call' });
    // A custom store's own error: typed, with the original kept as the cause.
    return new AzscaleError(`cache backend (${this.backend}) failed: ${describeError(e)}`, {
      cause: e,
      context: { backend: this.backend },
    });
  }
}

function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 200) : describeValue(e);
}

/** @internal `p`, or `onTimeout()` as a rejection after `ms` milliseconds. */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
