import type { DynamicModule } from '@nestjs/common';
import { ValidationError, describeValue } from '../core/errors.js';
import { DistributedCache } from '../cache/distributed-cache.js';
import { HealthRegistry } from '../observability/health.js';
import { Metrics } from '../observability/metrics.js';
import { ConcurrencyLimiter } from '../resilience/limiter.js';
import { CostOptimizer } from '../scaling/cost-optimizer.js';
import { DistributedSessionManager } from '../session/manager.js';
import { TaskQueue } from '../worker/queue.js';
import { BackgroundWorker } from '../worker/worker.js';
import { AzscaleHealthIndicator } from './health-indicator.js';
import { AzscaleMetricsInterceptor } from './interceptor.js';
import { common, core, injectParams } from './nest.js';
import { type AzscaleModuleOptions, AzscaleResources } from './resources.js';
import {
  AZSCALE_BREAKERS,
  AZSCALE_CACHE,
  AZSCALE_HEALTH,
  AZSCALE_LIMITER,
  AZSCALE_METRICS,
  AZSCALE_OPTIMIZER,
  AZSCALE_OPTIONS,
  AZSCALE_QUEUE,
  AZSCALE_RESOURCES,
  AZSCALE_SESSIONS,
  AZSCALE_WORKER,
} from './tokens.js';

/** Options of `AzscaleModule.forRootAsync`. */
export interface AzscaleModuleAsyncOptions {
  /** Builds the options (may be async); its arguments are the `inject` tokens' values. */
  // biome-ignore lint/suspicious/noExplicitAny: factory arguments are whatever `inject` names
  useFactory: (...args: any[]) => AzscaleModuleOptions | Promise<AzscaleModuleOptions>;
  /** Tokens whose values the factory receives (e.g. `ConfigService`). @default [] */
  inject?: DynamicModule['exports'];
  /** Modules that provide the `inject` tokens. @default [] */
  imports?: DynamicModule['imports'];
  /** See {@link AzscaleModuleOptions.isGlobal}; it must be known before the factory runs. @default true */
  isGlobal?: boolean;
  /** See {@link AzscaleModuleOptions.metricsInterceptor}. @default true */
  metricsInterceptor?: boolean;
  /** See {@link AzscaleModuleOptions.metricsPath}. @default '/metrics' */
  metricsPath?: string | false;
}

/** A Nest dynamic module, as `forRoot` returns it. */
export type AzscaleDynamicModule = DynamicModule;

const byToken: [string, keyof AzscaleResources, unknown][] = [
  [AZSCALE_CACHE, 'cache', DistributedCache],
  [AZSCALE_SESSIONS, 'sessions', DistributedSessionManager],
  [AZSCALE_QUEUE, 'queue', TaskQueue],
  [AZSCALE_WORKER, 'worker', BackgroundWorker],
  [AZSCALE_LIMITER, 'limiter', ConcurrencyLimiter],
  [AZSCALE_BREAKERS, 'breakers', undefined],
  [AZSCALE_METRICS, 'metrics', Metrics],
  [AZSCALE_HEALTH, 'health', HealthRegistry],
  [AZSCALE_OPTIMIZER, 'optimizer', CostOptimizer],
];

function metricsController(path: string): unknown {
  class AzscaleMetricsController {
    constructor(private readonly metrics: Metrics | undefined) {}
    async scrape(res: {
      setHeader?: (k: string, v: string) => void;
      header?: (k: string, v: string) => void;
      status?: (n: number) => void;
      send: (b: string) => void;
    }): Promise<void> {
      const text = this.metrics ? await this.metrics.prometheus() : '';
      const type = this.metrics?.contentType ?? 'text/plain; charset=utf-8';
      if (typeof res.header === 'function') res.header('content-type', type);
      else res.setHeader?.('content-type', type);
      res.send(text);
    }
  }
  common.Controller()(AzscaleMetricsController);
  injectParams(AzscaleMetricsController, [[common.Inject(AZSCALE_METRICS), common.Optional()]]);
  const proto = AzscaleMetricsController.prototype;
  const d = Object.getOwnPropertyDescriptor(proto, 'scrape')!;
  common.Get(path)(proto, 'scrape', d);
  common.Res()(proto, 'scrape', 0);
  return AzscaleMetricsController;
}

function assertFlags(o: {
  metricsInterceptor?: unknown;
  metricsPath?: unknown;
  isGlobal?: unknown;
}) {
  for (const k of ['metricsInterceptor', 'isGlobal'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') {
      throw new ValidationError(`${k} must be a boolean, received ${describeValue(o[k])}`, {
        option: k,
      });
    }
  }
  const p = o.metricsPath;
  if (p !== undefined && p !== false && (typeof p !== 'string' || !p.startsWith('/'))) {
    throw new ValidationError(
      `metricsPath must be a path starting with "/" or false, received ${describeValue(p)}`,
      { option: 'metricsPath' },
    );
  }
}

function dynamic(
  optionsProvider: unknown,
  flags: { isGlobal?: boolean; metricsInterceptor?: boolean; metricsPath?: string | false },
  imports: readonly unknown[],
  metricsKnown: boolean | undefined,
): AzscaleDynamicModule {
  assertFlags(flags);
  const providers: unknown[] = [
    optionsProvider,
    {
      provide: AZSCALE_RESOURCES,
      useFactory: (o: AzscaleModuleOptions) => new AzscaleResources(o),
      inject: [AZSCALE_OPTIONS],
    },
  ];
  const exports: unknown[] = [AZSCALE_OPTIONS, AZSCALE_RESOURCES, AzscaleHealthIndicator];
  for (const [token, field, cls] of byToken) {
    providers.push({
      provide: token,
      useFactory: (r: AzscaleResources) => r[field] ?? null,
      inject: [AZSCALE_RESOURCES],
    });
    exports.push(token);
    if (cls) {
      providers.push({ provide: cls, useExisting: token });
      exports.push(cls);
    }
  }
  providers.push(AzscaleHealthIndicator);
  const controllers: unknown[] = [];
  if (metricsKnown !== false) {
    if (flags.metricsInterceptor !== false) {
      providers.push({
        provide: core.APP_INTERCEPTOR,
        useFactory: (r: AzscaleResources) =>
          r.metrics
            ? new AzscaleMetricsInterceptor(r.metrics)
            : { intercept: (_c: unknown, n: { handle(): unknown }) => n.handle() },
        inject: [AZSCALE_RESOURCES],
      });
    }
    if (flags.metricsPath !== false)
      controllers.push(metricsController(flags.metricsPath ?? '/metrics'));
  }
  return {
    module: AzscaleModule,
    global: flags.isGlobal ?? true,
    imports: [...imports],
    providers,
    exports,
    controllers,
  } as DynamicModule;
}

/**
 * The azscale primitives as NestJS providers: `DistributedCache`, `DistributedSessionManager`,
 * `TaskQueue`, `BackgroundWorker`, `ConcurrencyLimiter`, circuit breakers, `Metrics`,
 * `HealthRegistry` and `CostOptimizer`, injectable by token (`@Inject(AZSCALE_CACHE)`) or by
 * class. With `metrics`, every HTTP request is counted (RED metrics, route templates) and
 * `GET /metrics` serves them; `AzscaleHealthIndicator` plugs the health checks into
 * `@nestjs/terminus`. At `app.close()` the worker stops (running tasks finish) and everything
 * closes.
 *
 * @example
 * \@Module({ imports: [AzscaleModule.forRoot({ redis: process.env.REDIS_URL, cache: true, metrics: true })] })
 * export class AppModule {}
 */
export class AzscaleModule {
  /** The module with `options` (instances, or options to build them). */
  static forRoot(options: AzscaleModuleOptions = {}): AzscaleDynamicModule {
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
        option: 'options',
      });
    }
    return dynamic(
      { provide: AZSCALE_OPTIONS, useValue: options },
      options,
      [],
      options.metrics !== undefined && options.metrics !== false,
    );
  }

  /** The module with options from a factory (e.g. reading `ConfigService`). */
  static forRootAsync(options: AzscaleModuleAsyncOptions): AzscaleDynamicModule {
    if (
      typeof options !== 'object' ||
      options === null ||
      typeof options.useFactory !== 'function'
    ) {
      throw new ValidationError(
        `forRootAsync needs { useFactory, inject? }, received ${describeValue(options)}`,
        { option: 'useFactory' },
      );
    }
    if (options.inject !== undefined && !Array.isArray(options.inject)) {
      throw new ValidationError(
        `inject must be an array, received ${describeValue(options.inject)}`,
        {
          option: 'inject',
        },
      );
    }
    return dynamic(
      {
        provide: AZSCALE_OPTIONS,
        useFactory: options.useFactory,
        inject: [...(options.inject ?? [])],
      },
      options,
      options.imports ?? [],
      undefined,
    );
  }
}
common.Module({})(AzscaleModule);
