import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ValidationError, describeValue } from '../core/errors.js';
import { assertDuration } from '../core/timers.js';
import {
  type DrainOptions,
  type ShutdownReport,
  failReadinessWhenDraining,
  readDrainOptions,
  stopBackends,
} from '../frameworks/lifecycle.js';

export type {
  Closeable,
  DrainOptions,
  ShutdownReport,
  StoppableWorker,
} from '../frameworks/lifecycle.js';

/** Options of {@link gracefulShutdown}. */
export interface GracefulShutdownOptions extends DrainOptions {
  /**
   * Signals that start the shutdown, or `false` to start it only by calling `shutdown()`.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: readonly NodeJS.Signals[] | false;
  /**
   * After a signal-started shutdown, end the process (`process.exit(0)`, or `1` when it timed
   * out or something failed to close). `false` leaves the process to end on its own.
   * @default true
   */
  exit?: boolean;
  /**
   * Seconds to keep accepting (while readiness already fails) before the listener closes, so
   * load balancers that poll readiness stop routing here first. Counts toward `timeout`.
   * @default 0
   */
  readinessDelay?: number;
}

/** The handle {@link gracefulShutdown} returns. */
export interface GracefulShutdown {
  /** True once shutdown started. */
  readonly draining: boolean;
  /**
   * Starts the shutdown (or joins the running one): fail readiness, stop accepting, let
   * in-flight requests finish, stop the worker (running tasks finish), close the closeables.
   */
  shutdown(): Promise<ShutdownReport>;
  /** Removes the signal listeners and the readiness check (for tests and hot reload). */
  dispose(): void;
}

/**
 * Drains an HTTP server (Express, or any `node:http` server) on SIGTERM: readiness fails at once
 * (with `health`), the listener closes (no new connections; keep-alive connections get
 * `Connection: close` on their next answer), requests in flight finish, then the worker stops
 * (running tasks finish, the rest go back to the queue) and the closeables close, all within
 * `timeout` seconds; past it, remaining connections are destroyed and tasks released.
 *
 * Give the worker `handleSignals: false` (its default) so that it keeps taking the tasks the
 * draining requests submit until they are done.
 *
 * @example
 * const server = app.listen(8080);
 * gracefulShutdown(server, { worker, health, closeables: [queue, cache, sessions], timeout: 25 });
 */
export function gracefulShutdown(
  server: Server,
  options: GracefulShutdownOptions = {},
): GracefulShutdown {
  if (
    typeof server !== 'object' ||
    server === null ||
    typeof (server as Partial<Server>).close !== 'function' ||
    typeof (server as Partial<Server>).prependListener !== 'function'
  ) {
    throw new ValidationError(
      `server must be a node:http Server, received ${describeValue(server)}`,
      {
        option: 'server',
      },
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const drain = readDrainOptions(options, { timeout: 25 });
  const signals =
    options.signals === undefined ? (['SIGTERM', 'SIGINT'] as const) : options.signals;
  if (
    signals !== false &&
    (!Array.isArray(signals) || signals.some((s) => typeof s !== 'string'))
  ) {
    throw new ValidationError(
      `signals must be an array of signal names or false, received ${describeValue(signals)}`,
      {
        option: 'signals',
      },
    );
  }
  if (options.exit !== undefined && typeof options.exit !== 'boolean') {
    throw new ValidationError(`exit must be a boolean, received ${describeValue(options.exit)}`, {
      option: 'exit',
    });
  }
  const exit = options.exit ?? true;
  const delayMs =
    options.readinessDelay === undefined
      ? 0
      : assertDuration(options.readinessDelay, 'readinessDelay (seconds)', {
          allowZero: true,
          max: 3600,
        }) * 1000;

  let draining = false;
  let running: Promise<ShutdownReport> | undefined;
  const undoCheck = failReadinessWhenDraining(drain.health, () => draining);

  // First listener on the server: an answer sent while draining closes its connection, so
  // keep-alive clients reconnect to another instance and close() is not held open by them.
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) res.setHeader('Connection', 'close');
  };
  server.prependListener('request', onRequest);

  const shutdown = (): Promise<ShutdownReport> => {
    running ??= (async () => {
      draining = true;
      const start = performance.now();
      const deadline = start + drain.timeoutMs;
      const errors: unknown[] = [];
      let timedOut = false;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, Math.min(delayMs, drain.timeoutMs)));
      const closed = new Promise<void>((resolve) => {
        server.close((err) => {
          if (err && (err as { code?: string }).code !== 'ERR_SERVER_NOT_RUNNING') errors.push(err);
          resolve();
        });
      });
      server.closeIdleConnections?.();
      // A connection that goes idle later is closed too (its answer carried Connection: close,
      // but a client may not act on it at once).
      const idle = setInterval(() => server.closeIdleConnections?.(), 100);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), Math.max(0, deadline - performance.now()));
      });
      if ((await Promise.race([closed, late])) === 'late') {
        timedOut = true;
        server.closeAllConnections?.();
        await closed;
      }
      clearTimeout(timer);
      clearInterval(idle);
      if (await stopBackends(drain, deadline, errors)) timedOut = true;
      return { timedOut, errors, duration: (performance.now() - start) / 1000 };
    })();
    return running;
  };

  const onSignal = () => {
    removeSignals();
    void shutdown().then((report) => {
      if (exit) process.exit(report.timedOut || report.errors.length > 0 ? 1 : 0);
    });
  };
  const removeSignals = () => {
    if (signals) for (const s of signals) process.off(s, onSignal);
  };
  if (signals) for (const s of signals) process.on(s, onSignal);

  return {
    get draining() {
      return draining;
    },
    shutdown,
    dispose() {
      removeSignals();
      undoCheck();
      server.off('request', onRequest);
    },
  };
}
