import { type RedisInput, RedisConnection } from '../core/connection.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { DistributedCache, type DistributedCacheOptions } from '../cache/distributed-cache.js';
import { HealthRegistry } from '../observability/health.js';
import { Metrics, type MetricsOptions } from '../observability/metrics.js';
import { CircuitBreaker, type CircuitOptions } from '../resilience/circuit.js';
import { ConcurrencyLimiter, type ConcurrencyLimiterOptions } from '../resilience/limiter.js';
import { CostOptimizer, type CostOptimizerOptions } from '../scaling/cost-optimizer.js';
import {
  DistributedSessionManager,
  type DistributedSessionManagerOptions,
} from '../session/manager.js';
import { TaskQueue } from '../worker/queue.js';
import type { TaskQueueOptions } from '../worker/types.js';
import { BackgroundWorker } from '../worker/worker.js';

/**
 * Options of `AzscaleModule.forRoot`. Each primitive is an instance (handed over to the module)
 * or the options to build one (`true` for the defaults); built ones get `redis` unless their
 * options name their own.
 */
export interface AzscaleModuleOptions {
  /**
   * The Redis every primitive the module builds uses (URL, ioredis client you own, or
   * `{ nodes }`), and the target of the `redis` readiness check. Omit for embedded backends.
   * @default undefined
   */
  redis?: RedisInput;
  /** `DistributedCache` (`AZSCALE_CACHE`). @default undefined (none) */
  cache?: DistributedCache | DistributedCacheOptions | boolean;
  /** `DistributedSessionManager` (`AZSCALE_SESSIONS`). @default undefined (none) */
  sessions?: DistributedSessionManager | DistributedSessionManagerOptions | boolean;
  /** `TaskQueue` (`AZSCALE_QUEUE`). @default undefined (none) */
  queue?: TaskQueue | TaskQueueOptions | boolean;
  /** A `BackgroundWorker` you built (`AZSCALE_WORKER`); stopped (running tasks finish) before the rest close. @default undefined (none) */
  worker?: BackgroundWorker;
  /** `ConcurrencyLimiter` (`AZSCALE_LIMITER`); options need `concurrency`. @default undefined (none) */
  limiter?: ConcurrencyLimiter | ConcurrencyLimiterOptions;
  /** Circuit breakers by name (`AZSCALE_BREAKERS`): instances or their options. @default undefined (none) */
  breakers?: Readonly<Record<string, CircuitBreaker | CircuitOptions>>;
  /** `Metrics` (`AZSCALE_METRICS`); with it, RED metrics are recorded for every HTTP request. @default undefined (none) */
  metrics?: Metrics | MetricsOptions | boolean;
  /** `CostOptimizer` (`AZSCALE_OPTIMIZER`). @default undefined (none) */
  optimizer?: CostOptimizer | CostOptimizerOptions | boolean;
  /** `HealthRegistry` (`AZSCALE_HEALTH`). @default a new registry, with a `redis` check when `redis` is set */
  health?: HealthRegistry;
  /**
   * Close the primitives when the application shuts down (`app.close()`, or a signal with
   * `enableShutdownHooks()`), after the HTTP server stopped: the worker first (running tasks
   * finish within `shutdownTimeout`), then the rest. `false` when the app closes them itself.
   * @default true
   */
  closeOnShutdown?: boolean;
  /** Seconds the worker may take to finish running tasks at shutdown. @default 25 */
  shutdownTimeout?: number;
  /** Register the RED metrics interceptor for every route (with `metrics`). @default true */
  metricsInterceptor?: boolean;
  /** Serve the Prometheus text at this path (with `metrics`), or `false`. @default '/metrics' */
  metricsPath?: string | false;
  /** Make the providers global (no need to import the module in feature modules). @default true */
  isGlobal?: boolean;
}

function build<C, O>(
  value: unknown,
  Cls: new (o: O) => C,
  option: string,
  redis: RedisInput | undefined,
  withRedis = true,
): { value: C | undefined; built: boolean } {
  if (value === undefined || value === false) return { value: undefined, built: false };
  if (value instanceof Cls) return { value, built: false };
  if (value !== true && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new ValidationError(
      `${option} must be a ${Cls.name}, its options or true, received ${describeValue(value)}`,
      { option },
    );
  }
  const opts = (value === true ? {} : value) as Record<string, unknown>;
  const withDefaults =
    withRedis && redis !== undefined && opts.redis === undefined ? { ...opts, redis } : opts;
  return { value: new Cls(withDefaults as O), built: true };
}

/** What the module provides, and the shutdown that closes it. */
export class AzscaleResources {
  /** The cache (`AZSCALE_CACHE`), when the options name one. */
  readonly cache: DistributedCache | undefined;
  /** The session manager (`AZSCALE_SESSIONS`), when the options name one. */
  readonly sessions: DistributedSessionManager | undefined;
  /** The task queue (`AZSCALE_QUEUE`), when the options name one. */
  readonly queue: TaskQueue | undefined;
  /** The worker (`AZSCALE_WORKER`), when the options name one. */
  readonly worker: BackgroundWorker | undefined;
  /** The limiter (`AZSCALE_LIMITER`), when the options name one. */
  readonly limiter: ConcurrencyLimiter | undefined;
  /** The circuit breakers by name (`AZSCALE_BREAKERS`); empty when the options name none. */
  readonly breakers: Record<string, CircuitBreaker>;
  /** The metrics (`AZSCALE_METRICS`), when the options name them. */
  readonly metrics: Metrics | undefined;
  /** The cost optimizer (`AZSCALE_OPTIMIZER`), when the options name one. */
  readonly optimizer: CostOptimizer | undefined;
  /** The health registry (`AZSCALE_HEALTH`): the options' own, or one the module made. */
  readonly health: HealthRegistry;
  /** The options the module was built from. */
  readonly options: AzscaleModuleOptions;
  private readonly healthConnection: RedisConnection | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: AzscaleModuleOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
        option: 'options',
      });
    }
    this.options = options;
    const redis = options.redis;
    this.cache = build(options.cache, DistributedCache, 'cache', redis).value;
    this.sessions = build<DistributedSessionManager, DistributedSessionManagerOptions>(
      options.sessions,
      DistributedSessionManager,
      'sessions',
      redis,
    ).value;
    this.queue = build(options.queue, TaskQueue, 'queue', redis).value;
    if (options.worker !== undefined && !(options.worker instanceof BackgroundWorker)) {
      throw new ValidationError(
        `worker must be a BackgroundWorker, received ${describeValue(options.worker)}`,
        { option: 'worker' },
      );
    }
    this.worker = options.worker;
    this.limiter = build(options.limiter, ConcurrencyLimiter, 'limiter', redis).value;
    this.metrics = build(options.metrics, Metrics, 'metrics', undefined, false).value;
    this.optimizer = build(options.optimizer, CostOptimizer, 'optimizer', undefined, false).value;
    const breakers = options.breakers ?? {};
    if (typeof breakers !== 'object' || breakers === null || Array.isArray(breakers)) {
      throw new ValidationError(
        `breakers must be an object by name, received ${describeValue(breakers)}`,
        {
          option: 'breakers',
        },
      );
    }
    this.breakers = {};
    for (const [name, b] of Object.entries(breakers)) {
      this.breakers[name] =
        b instanceof CircuitBreaker
          ? b
          : build(
              { name, ...(b as CircuitOptions) },
              CircuitBreaker,
              `breakers.${name}`,
              undefined,
              false,
            ).value!;
    }
    if (options.health !== undefined && !(options.health instanceof HealthRegistry)) {
      throw new ValidationError(
        `health must be a HealthRegistry, received ${describeValue(options.health)}`,
        { option: 'health' },
      );
    }
    this.health = options.health ?? new HealthRegistry({ metrics: this.metrics });
    if (redis !== undefined && !this.health.names().includes('redis')) {
      // Its own connection, with short timeouts: a probe must answer within the kubelet's.
      const conn = new RedisConnection(redis, { connectTimeout: 1, commandTimeout: 1 }, 'redis');
      this.healthConnection = conn;
      this.health.register('redis', async () => {
        const c = await conn.get();
        return (await c.ping()) === 'PONG';
      });
    }
  }

  /** Stops the worker, then closes every primitive (idempotent). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      const timeout = this.options.shutdownTimeout ?? 25;
      if (this.options.closeOnShutdown !== false) {
        if (this.worker) await this.worker.stop({ timeout }).catch((e) => errors.push(e));
        const all = [
          this.queue,
          this.cache,
          this.sessions,
          this.limiter,
          ...Object.values(this.breakers),
          this.optimizer,
        ];
        for (const c of all) {
          if (c) await c.close().catch((e: unknown) => errors.push(e));
        }
      }
      await this.healthConnection?.close().catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw errors[0];
    })();
    return this.closing;
  }

  /** Nest calls it at `app.close()`, after the HTTP server stopped taking requests. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}
