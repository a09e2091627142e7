import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { ValidationError, describeValue } from '../core/errors.js';
import type { MetricsSink } from '../core/metrics.js';
import {
  type Closeable,
  type StoppableWorker,
  failReadinessWhenDraining,
  readDrainOptions,
  stopBackends,
} from '../frameworks/lifecycle.js';
import { trackConnections } from '../frameworks/connections.js';
import { makeProbes } from '../frameworks/probes.js';
import { assertMetrics } from '../frameworks/red.js';
import type { HealthRegistry } from '../observability/health.js';
import { registerRedHooks } from './red-hooks.js';

/**
 * Options of {@link azscalePlugin}. Every primitive is optional; what is given is decorated on
 * `fastify.azscale` and, with `close` (the default), closed in `onClose`.
 */
export interface AzscalePluginOptions {
  /** RED hooks (`http_requests_total`, `http_request_duration_seconds`, `http_errors_total`) and `GET /metrics`. @default undefined (none) */
  metrics?: MetricsSink;
  /** `GET /healthz`, `/readyz`, `/startupz`; readiness fails once the app starts closing. @default undefined (none) */
  health?: HealthRegistry;
  /** A `DistributedSessionManager`. @default undefined (none) */
  sessions?: object;
  /** A `DistributedCache`. @default undefined (none) */
  cache?: object;
  /** A `TaskQueue`. @default undefined (none) */
  queue?: object;
  /** A `BackgroundWorker`: stopped in `onClose` once in-flight requests are done (running tasks finish). @default undefined (none) */
  worker?: StoppableWorker;
  /** A `ConcurrencyLimiter` (or any limiter). @default undefined (none) */
  limiter?: object;
  /** Circuit breakers by name. @default {} */
  breakers?: Readonly<Record<string, object>>;
  /** A `CostOptimizer`. @default undefined (none) */
  optimizer?: object;
  /** A `DatabaseRouter`. @default undefined (none) */
  db?: object;
  /** More things to close in `onClose`, after the primitives above. @default [] */
  closeables?: readonly Closeable[];
  /**
   * Close the primitives given here in `onClose` (worker first, then queue, cache, sessions,
   * limiter, breakers, optimizer, db, closeables). `false` when the app closes them itself.
   * @default true
   */
  close?: boolean;
  /** Path of the Prometheus text, or `false` for none. @default '/metrics' */
  metricsPath?: string | false;
  /** Liveness path. @default '/healthz' */
  livenessPath?: string;
  /** Readiness path. @default '/readyz' */
  readinessPath?: string;
  /** Startup-probe path. @default '/startupz' */
  startupPath?: string;
  /** When the app counts as started (see `healthRoutes`). @default first passing readiness */
  started?: () => boolean | Promise<boolean>;
  /**
   * Seconds the worker may spend finishing running tasks in `onClose` before it releases them
   * to the queue.
   * @default 25
   */
  shutdownTimeout?: number;
  /**
   * Signals on which the plugin calls `fastify.close()` and then ends the process (exit code 0,
   * or 1 when closing failed). Off by default: a plugin does not take over the process unless
   * asked.
   * @default false
   */
  signals?: readonly NodeJS.Signals[] | false;
}

/** What `fastify.azscale` holds. */
export interface AzscaleDecoration {
  /** The `metrics` option (the RED metrics' sink), if given. */
  metrics: MetricsSink | undefined;
  /** The `health` option, if given. */
  health: HealthRegistry | undefined;
  /** The `sessions` option (a `DistributedSessionManager`), if given. */
  sessions: object | undefined;
  /** The `cache` option (a `DistributedCache`), if given. */
  cache: object | undefined;
  /** The `queue` option (a `TaskQueue`), if given. */
  queue: object | undefined;
  /** The `worker` option (a `BackgroundWorker`), if given. */
  worker: StoppableWorker | undefined;
  /** The `limiter` option, if given. */
  limiter: object | undefined;
  /** The `breakers` option, by name (empty when not given). */
  breakers: Readonly<Record<string, object>>;
  /** The `optimizer` option (a `CostOptimizer`), if given. */
  optimizer: object | undefined;
  /** The `db` option (a `DatabaseRouter`), if given. */
  db: object | undefined;
  /** True once `fastify.close()` started: readiness fails, answers close their connection. */
  readonly draining: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The azscale primitives registered by `azscalePlugin`. */
    azscale: AzscaleDecoration;
  }
}

function closeableOf(v: unknown, option: string): Closeable | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null) {
    throw new ValidationError(`${option} must be an object, received ${describeValue(v)}`, {
      option,
    });
  }
  return typeof (v as { close?: unknown }).close === 'function' ? (v as Closeable) : undefined;
}

async function plugin(fastify: FastifyInstance, options: AzscalePluginOptions): Promise<void> {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const o = options;
  const metrics = o.metrics === undefined ? undefined : assertMetrics(o.metrics);
  const breakers = o.breakers ?? {};
  if (typeof breakers !== 'object' || breakers === null || Array.isArray(breakers)) {
    throw new ValidationError(
      `breakers must be an object of breakers by name, received ${describeValue(breakers)}`,
      {
        option: 'breakers',
      },
    );
  }
  if (o.close !== undefined && typeof o.close !== 'boolean') {
    throw new ValidationError(`close must be a boolean, received ${describeValue(o.close)}`, {
      option: 'close',
    });
  }
  const owned: Closeable[] = [];
  for (const [name, v] of [
    ['queue', o.queue],
    ['cache', o.cache],
    ['sessions', o.sessions],
    ['limiter', o.limiter],
    ...Object.entries(breakers).map(([k, b]) => [`breakers.${k}`, b] as const),
    ['optimizer', o.optimizer],
    ['db', o.db],
  ] as const) {
    const c = closeableOf(v, name);
    if (c) owned.push(c);
  }
  const drain = readDrainOptions(
    {
      worker: o.worker,
      health: o.health,
      timeout: o.shutdownTimeout ?? 25,
      closeables: [...(o.close === false ? [] : owned), ...(o.closeables ?? [])],
    },
    { timeout: 25 },
  );
  if (o.close === false) drain.worker = undefined;
  const metricsPath = o.metricsPath === undefined ? '/metrics' : o.metricsPath;
  if (metricsPath !== false && (typeof metricsPath !== 'string' || !metricsPath.startsWith('/'))) {
    throw new ValidationError(
      `metricsPath must be a path starting with "/" or false, received ${describeValue(metricsPath)}`,
      { option: 'metricsPath' },
    );
  }
  const signals = o.signals ?? false;
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

  let draining = false;
  const decoration: AzscaleDecoration = {
    metrics,
    health: o.health,
    sessions: o.sessions,
    cache: o.cache,
    queue: o.queue,
    worker: o.worker,
    limiter: o.limiter,
    breakers,
    optimizer: o.optimizer,
    db: o.db,
    get draining() {
      return draining;
    },
  };
  fastify.decorate('azscale', decoration);

  const excluded = new Set<string>();
  if (o.health) {
    const probes = makeProbes({
      health: o.health,
      livenessPath: o.livenessPath,
      readinessPath: o.readinessPath,
      startupPath: o.startupPath,
      started: o.started,
    });
    for (const path of [probes.liveness, probes.readiness, probes.startup]) {
      excluded.add(path);
      fastify.get(path, async (_req: FastifyRequest, reply: FastifyReply) => {
        const r = (await probes.run(path))!;
        reply.code(r.status).header('cache-control', 'no-store');
        return r.body;
      });
    }
    const undo = failReadinessWhenDraining(o.health, () => draining);
    fastify.addHook('onClose', async () => undo());
  }
  if (metrics) {
    if (metricsPath !== false) {
      excluded.add(metricsPath);
      const prom = metrics as unknown as {
        prometheus?: () => Promise<string>;
        contentType?: string;
      };
      if (typeof prom.prometheus === 'function') {
        fastify.get(metricsPath, async (_req: FastifyRequest, reply: FastifyReply) => {
          const text = await prom.prometheus!();
          reply.type(prom.contentType ?? 'text/plain; version=0.0.4; charset=utf-8');
          return text;
        });
      }
    }
    // Routes registered before the plugin are not seen: register it first.
    registerRedHooks(fastify, metrics, excluded);
  }
  // Drain marks only the answers in flight when closing starts (Fastify itself closes the
  // connection of any request that arrives later): no onSend hook on every request for a flag
  // that is false for the whole life of the app but its last seconds.
  const connections = trackConnections(fastify.server);
  fastify.addHook('preClose', (done: () => void) => {
    draining = true;
    connections.closeAfterInFlight();
    done();
  });
  // Fastify runs onClose after the server stopped accepting and in-flight requests finished.
  fastify.addHook('onClose', async () => {
    draining = true;
    connections.dispose();
    const errors: unknown[] = [];
    await stopBackends(drain, performance.now() + drain.timeoutMs, errors);
    if (errors.length > 0) {
      fastify.log.error({ errors }, 'azscale: closing backends failed');
      throw errors[0];
    }
  });

  if (signals) {
    const onSignal = () => {
      for (const s of signals) process.off(s, onSignal);
      fastify.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    for (const s of signals) process.on(s, onSignal);
    fastify.addHook('onClose', async () => {
      for (const s of signals) process.off(s, onSignal);
    });
  }
}

/**
 * The azscale Fastify plugin (wrapped as fastify-plugin does, so its decorator and hooks apply
 * to the whole app): decorates `fastify.azscale` with the primitives given, registers the RED
 * hooks and `GET /metrics` (with `metrics`), the probes `/healthz`, `/readyz`, `/startupz` (with
 * `health`), fails readiness and sends `Connection: close` once closing starts, and in `onClose`
 * (after in-flight requests finished) stops the worker and closes every primitive.
 *
 * @example
 * await app.register(azscalePlugin, { metrics, health, sessions, cache, queue, worker });
 */
export const azscalePlugin: FastifyPluginAsync<AzscalePluginOptions> = Object.assign(plugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'azscale',
  [Symbol.for('plugin-meta')]: { name: 'azscale', fastify: '>=4' },
});
