/**
 * Turning tracing on: {@link setupTracing} points azscale's spans (the seam in `core/trace`,
 * re-exported here) at a tracer provider, optionally one it creates with an exporter. After it,
 * spans named `azscale.<module>.<op>` go to that provider, parented to the caller's active span.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { assertObject, assertString } from '../core/validate.js';
import {
  type TracerLike,
  type TracerProviderLike,
  disableTracing,
  installTracer,
  otelApi,
  tracingGeneration,
  VERSION,
} from '../core/trace.js';
import {
  type CreatedProvider,
  type OtlpExporterOptions,
  type SpanExporterLike,
  assertExporterOption,
  createProvider,
} from './tracing-sdk.js';

export type { OtlpExporterOptions, SpanExporterLike } from './tracing-sdk.js';
export {
  type SpanAttributeValue,
  type SpanAttributes,
  type SpanHandle,
  type SpanKindName,
  type WithSpanOptions,
  type TracerLike,
  type TracerProviderLike,
  type TraceCarrier,
  annotateActiveSpan,
  currentTraceContext,
  disableTracing,
  isTracingEnabled,
  withSpan,
  withTraceContext,
} from '../core/trace.js';

/** Options of {@link setupTracing}. */
export interface TracingOptions {
  /**
   * Your service's name: the resource's `service.name` when azscale creates the provider
   * (`exporter`), and the `azscale.service.name` attribute of every azscale span.
   */
  serviceName: string;
  /**
   * The provider azscale's spans go to. Not with `exporter`. @default the global provider of
   * `@opentelemetry/api` (the one `NodeSDK` or `provider.register()` installed), looked up at
   * each span.
   */
  tracerProvider?: TracerProviderLike;
  /**
   * Have azscale create the SDK provider, with the resource `service.name`, exporting to:
   * `'otlp'` (OTLP over HTTP; needs `@opentelemetry/exporter-trace-otlp-http`), `'console'`
   * (stdout), or an OpenTelemetry `SpanExporter` of your own. Needs `@opentelemetry/api`,
   * `@opentelemetry/sdk-trace-base` and `@opentelemetry/resources` (optional peers); a missing
   * one is a ValidationError naming it. Not with `tracerProvider`. @default none (no provider is
   * created)
   */
  exporter?: 'otlp' | 'console' | SpanExporterLike;
  /** Endpoint and headers for `exporter: 'otlp'`. @default the exporter's (see {@link OtlpExporterOptions}) */
  otlp?: OtlpExporterOptions;
  /** More resource attributes for the created provider, e.g. `{ 'deployment.environment.name': 'prod' }`. @default {} */
  resourceAttributes?: Record<string, string | number | boolean>;
  /**
   * With `exporter`: also make the created provider the global one of `@opentelemetry/api` (so
   * your own spans share its traces) and install an AsyncLocalStorage context manager when
   * `@opentelemetry/context-async-hooks` is installed. Either is skipped when one is already
   * registered. @default true
   */
  register?: boolean;
}

/** What {@link setupTracing} returns. */
export interface Tracing {
  /** True when spans are being produced. */
  readonly enabled: boolean;
  /** Why tracing is off, when it is. */
  readonly reason: string | undefined;
  /** The service name given. */
  readonly serviceName: string;
  /** The provider azscale created for `exporter`; undefined otherwise. */
  readonly provider: TracerProviderLike | undefined;
  /** Turns azscale's spans off again (the provider itself is left alone). */
  disable(): void;
  /** Exports the spans the created provider still buffers (a no-op without `exporter`). */
  forceFlush(): Promise<void>;
  /**
   * Turns azscale's spans off and, for a provider azscale created, flushes and shuts it down and
   * unregisters what it registered. Call it before the process exits, or spans are lost.
   */
  shutdown(): Promise<void>;
}

/**
 * Turns on azscale's spans. With `tracerProvider`, spans go to it; without, to the global provider
 * of `@opentelemetry/api`. `@opentelemetry/api` is an optional peer: when it is missing and no
 * provider is given, tracing stays off (`enabled: false`) and nothing fails.
 *
 * Spans are parented to the active span of the caller's context, so register a context manager
 * (the SDK's `NodeSDK`/`provider.register()` do; or `AsyncLocalStorageContextManager` from
 * `@opentelemetry/context-async-hooks`) for parents to follow `await`.
 *
 * @example
 * const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter)] });
 * setupTracing({ serviceName: 'checkout', tracerProvider: provider });
 */
export function setupTracing(options: TracingOptions): Tracing {
  assertObject(options, 'options');
  const serviceName = assertString(options.serviceName, 'serviceName');
  const provider = options.tracerProvider;
  if (
    provider !== undefined &&
    (typeof provider !== 'object' ||
      provider === null ||
      typeof (provider as Partial<TracerProviderLike>).getTracer !== 'function')
  ) {
    throw new ValidationError(
      `tracerProvider must be an OpenTelemetry TracerProvider (with getTracer()), received ${describeValue(provider)}`,
      { option: 'tracerProvider' },
    );
  }
  const exporter =
    options.exporter === undefined ? undefined : assertExporterOption(options.exporter);
  if (exporter !== undefined && provider !== undefined) {
    throw new ValidationError('give tracerProvider or exporter, not both', { option: 'exporter' });
  }
  if (options.otlp !== undefined) {
    assertObject(options.otlp, 'otlp');
    if (options.otlp.url !== undefined) {
      const url = assertString(options.otlp.url, 'otlp.url');
      if (!/^https?:\/\/[^\s]+$/.test(url)) {
        throw new ValidationError(
          `otlp.url must be an http(s) URL, received ${describeValue(url)}`,
          {
            option: 'otlp.url',
          },
        );
      }
    }
    if (options.otlp.headers !== undefined) assertObject(options.otlp.headers, 'otlp.headers');
  }
  if (options.resourceAttributes !== undefined) {
    assertObject(options.resourceAttributes, 'resourceAttributes');
  }
  const created: CreatedProvider | undefined = exporter
    ? createProvider({
        serviceName,
        exporter,
        otlp: options.otlp,
        resourceAttributes: options.resourceAttributes,
        register: options.register !== false,
      })
    : undefined;
  const api = otelApi();
  let tracer: TracerLike | undefined;
  let reason: string | undefined;
  const chosen = created?.provider ?? provider;
  if (chosen) tracer = chosen.getTracer('azscale', VERSION);
  else if (api) tracer = api.trace.getTracer('azscale', VERSION);
  else reason = '@opentelemetry/api is not installed and no tracerProvider was given';

  const generation = installTracer(tracer, api, serviceName);
  const disable = () => {
    if (tracingGeneration() === generation) disableTracing();
  };
  return {
    enabled: tracer !== undefined,
    reason,
    serviceName,
    provider: created?.provider,
    disable,
    async forceFlush() {
      await created?.provider.forceFlush();
    },
    async shutdown() {
      disable();
      if (!created) return;
      try {
        await created.provider.shutdown();
      } finally {
        created.unregister();
      }
    },
  };
}
