import { ValidationError, describeValue } from '../core/errors.js';
import { assertDuration } from '../core/timers.js';
import type { HealthRegistry } from '../observability/health.js';

/** Something closed at shutdown: an object with `close()` (azscale primitives, pg pools, ...) or a function. */
export type Closeable =
  | {
      /** Releases the resource; a returned promise is awaited (within the drain's timeout). */
      close(): unknown;
    }
  | (() => unknown);

/** The part of a `BackgroundWorker` shutdown uses. */
export interface StoppableWorker {
  /**
   * Stops claiming tasks and waits for the running ones, at most `options.timeout` seconds,
   * then hands what is still running back to the queue.
   */
  stop(options?: {
    /** Seconds running tasks may take to finish. @default the worker's own */
    timeout?: number;
  }): Promise<void>;
}

/** Options of the drain sequence shared by `gracefulShutdown` and `azscalePlugin`. */
export interface DrainOptions {
  /**
   * A worker to stop once no HTTP request is in flight: it stops claiming, lets running tasks
   * finish within what is left of `timeout`, and hands the rest back to the queue.
   * @default undefined
   */
  worker?: StoppableWorker;
  /**
   * Backends to close after the worker, in order (queue, cache, sessions, pools...). An error
   * from one is reported and the next is still closed.
   * @default []
   */
  closeables?: readonly Closeable[];
  /**
   * Seconds the whole shutdown may take; past it open connections are destroyed and the worker
   * aborts its tasks (they go back to the queue). Keep it under Kubernetes'
   * `terminationGracePeriodSeconds` (30 by default).
   * @default 25
   */
  timeout?: number;
  /**
   * A health registry whose readiness probe starts failing as soon as shutdown begins (a
   * `shutdown` readiness check is registered on it), so load balancers stop sending traffic.
   * @default undefined
   */
  health?: HealthRegistry;
}

/** What a finished shutdown reports. */
export interface ShutdownReport {
  /** True when the deadline passed before everything finished. */
  timedOut: boolean;
  /** Errors from closing the server, stopping the worker or closing a closeable, in order. */
  errors: unknown[];
  /** Seconds the shutdown took. */
  duration: number;
}

/** Validated drain options. */
export interface Drain {
  worker: StoppableWorker | undefined;
  closeables: Closeable[];
  timeoutMs: number;
  health: HealthRegistry | undefined;
}

/** Validates {@link DrainOptions}. */
export function readDrainOptions(o: DrainOptions, defaults: { timeout: number }): Drain {
  const worker = o.worker;
  if (
    worker !== undefined &&
    (typeof worker !== 'object' || worker === null || typeof worker.stop !== 'function')
  ) {
    throw new ValidationError(
      `worker must be a BackgroundWorker, received ${describeValue(worker)}`,
      {
        option: 'worker',
      },
    );
  }
  const closeables = o.closeables ?? [];
  if (!Array.isArray(closeables)) {
    throw new ValidationError(
      `closeables must be an array, received ${describeValue(closeables)}`,
      {
        option: 'closeables',
      },
    );
  }
  closeables.forEach((c, i) => {
    const ok =
      typeof c === 'function' ||
      (typeof c === 'object' &&
        c !== null &&
        typeof (c as { close?: unknown }).close === 'function');
    if (!ok) {
      throw new ValidationError(
        `closeables[${i}] must have a close() method or be a function, received ${describeValue(c)}`,
        { option: `closeables[${i}]` },
      );
    }
  });
  const timeout = assertDuration(o.timeout ?? defaults.timeout, 'timeout (seconds)', { max: 3600 });
  const health = o.health;
  if (
    health !== undefined &&
    (typeof health !== 'object' || health === null || typeof health.register !== 'function')
  ) {
    throw new ValidationError(
      `health must be a HealthRegistry, received ${describeValue(health)}`,
      {
        option: 'health',
      },
    );
  }
  return { worker, closeables: [...closeables], timeoutMs: timeout * 1000, health };
}

/**
 * Registers a readiness check that fails once `isDraining()` is true. The returned disposer
 * removes it. A registry that already has a `shutdown` check keeps it (two drains on one
 * registry share it).
 */
export function failReadinessWhenDraining(
  health: HealthRegistry | undefined,
  isDraining: () => boolean,
): () => void {
  if (health === undefined || health.names().includes('shutdown')) return () => {};
  return health.register('shutdown', () => (isDraining() ? { status: 'down' } : true), {
    probes: ['readiness'],
  });
}

/** Stops the worker and closes the closeables, within `deadline` (performance.now() ms). */
export async function stopBackends(
  d: Drain,
  deadline: number,
  errors: unknown[],
): Promise<boolean> {
  let timedOut = false;
  if (d.worker) {
    const left = Math.max(0, deadline - performance.now()) / 1000;
    try {
      await d.worker.stop({ timeout: left });
    } catch (e) {
      errors.push(e);
    }
    if (performance.now() > deadline) timedOut = true;
  }
  for (const c of d.closeables) {
    try {
      await (typeof c === 'function' ? c() : c.close());
    } catch (e) {
      errors.push(e);
    }
  }
  return timedOut;
}
