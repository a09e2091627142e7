/**
 * Builds an OpenTelemetry SDK tracer provider for {@link setupTracing}'s `exporter` option from
 * the optional peer packages, loaded only when asked: `@opentelemetry/sdk-trace-base` (or its
 * successor `@opentelemetry/sdk-trace`), `@opentelemetry/resources`, and for `'otlp'`
 * `@opentelemetry/exporter-trace-otlp-http`; `@opentelemetry/context-async-hooks`, when present,
 * makes parents follow `await`.
 *
 * Nothing here is loaded at import time; a missing package is a typed error naming it.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { lazyRequire } from '../core/lazy-require.js';
import type { TracerProviderLike } from '../core/trace.js';

/** The part of an OpenTelemetry `SpanExporter` a provider needs (any SDK exporter fits). */
export interface SpanExporterLike {
  /** Sends finished spans; calls `resultCallback` with `{ code: 0 }` on success. */
  export(spans: unknown[], resultCallback: (result: { code: number; error?: Error }) => void): void;
  /** Flushes and releases the exporter. */
  shutdown(): Promise<void>;
  /** Sends what is buffered. */
  forceFlush?(): Promise<void>;
}

/** Where `exporter: 'otlp'` sends spans (OTLP over HTTP, JSON encoding). */
export interface OtlpExporterOptions {
  /**
   * The traces endpoint. @default `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
   * `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `http://localhost:4318/v1/traces`
   * (the exporter's own defaults).
   */
  url?: string;
  /** Extra HTTP headers, e.g. an API key. @default {} */
  headers?: Record<string, string>;
}

/** A provider that {@link setupTracing} created, with what is needed to flush and stop it. */
export interface CreatedProvider {
  /** The SDK provider. */
  provider: TracerProviderLike & { forceFlush(): Promise<void>; shutdown(): Promise<void> };
  /** What the provider was registered as: global provider and/or context manager. */
  registered: { provider: boolean; contextManager: boolean };
  /** Unregisters what {@link CreatedProvider.registered} says was registered. */
  unregister(): void;
}

interface SdkModule {
  BasicTracerProvider: new (config: {
    resource?: unknown;
    spanProcessors?: unknown[];
  }) => CreatedProvider['provider'];
  BatchSpanProcessor: new (exporter: SpanExporterLike) => unknown;
  SimpleSpanProcessor: new (exporter: SpanExporterLike) => unknown;
  ConsoleSpanExporter: new () => SpanExporterLike;
}

interface ApiModule {
  trace: {
    setGlobalTracerProvider(p: unknown): boolean;
    disable(): void;
  };
  context: { setGlobalContextManager(m: unknown): boolean; disable(): void };
}

/** Loads the first of `names` that resolves, or throws a ValidationError naming them all. */
function load<T>(names: readonly string[], why: string): T {
  for (const name of names) {
    try {
      return lazyRequire<T>(name);
    } catch {
      // Try the next name.
    }
  }
  throw new ValidationError(
    `${why} needs ${names.join(' or ')} (an optional peer dependency): npm install ${names[0]}`,
    { option: 'exporter' },
  );
}

function isExporter(v: unknown): v is SpanExporterLike {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as SpanExporterLike).export === 'function' &&
    typeof (v as SpanExporterLike).shutdown === 'function'
  );
}

/** Checks the `exporter` option of {@link setupTracing}. */
export function assertExporterOption(v: unknown): 'otlp' | 'console' | SpanExporterLike {
  if (v === 'otlp' || v === 'console' || isExporter(v)) return v;
  throw new ValidationError(
    `exporter must be 'otlp', 'console' or an OpenTelemetry SpanExporter (with export() and shutdown()), received ${describeValue(v)}`,
    { option: 'exporter' },
  );
}

/**
 * Creates a provider with the resource `service.name` (plus `resourceAttributes`) and a span
 * processor for `exporter`: batching for OTLP and custom exporters, immediate for the console.
 * With `register`, it also becomes the global provider of `@opentelemetry/api` (so the app's own
 * spans and azscale's share traces) and an AsyncLocalStorage context manager is installed when
 * `@opentelemetry/context-async-hooks` is present.
 */
export function createProvider(options: {
  serviceName: string;
  exporter: 'otlp' | 'console' | SpanExporterLike;
  otlp?: OtlpExporterOptions;
  resourceAttributes?: Record<string, string | number | boolean>;
  register: boolean;
}): CreatedProvider {
  const why = `setupTracing({ exporter: ${typeof options.exporter === 'string' ? `'${options.exporter}'` : 'custom'} })`;
  const sdk = load<SdkModule>(['@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-trace'], why);
  const resources = load<{ resourceFromAttributes(a: Record<string, unknown>): unknown }>(
    ['@opentelemetry/resources'],
    why,
  );
  let exporter: SpanExporterLike;
  if (options.exporter === 'console') exporter = new sdk.ConsoleSpanExporter();
  else if (options.exporter === 'otlp') {
    const otlp = load<{ OTLPTraceExporter: new (c: object) => SpanExporterLike }>(
      ['@opentelemetry/exporter-trace-otlp-http'],
      why,
    );
    exporter = new otlp.OTLPTraceExporter({
      ...(options.otlp?.url !== undefined && { url: options.otlp.url }),
      ...(options.otlp?.headers !== undefined && { headers: { ...options.otlp.headers } }),
    });
  } else exporter = options.exporter;
  const processor =
    options.exporter === 'console'
      ? new sdk.SimpleSpanProcessor(exporter)
      : new sdk.BatchSpanProcessor(exporter);
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({
      ...options.resourceAttributes,
      'service.name': options.serviceName,
    }),
    spanProcessors: [processor],
  });

  const registered = { provider: false, contextManager: false };
  let api: ApiModule | undefined;
  if (options.register) {
    api = load<ApiModule>(['@opentelemetry/api'], why);
    registered.provider = api.trace.setGlobalTracerProvider(provider);
    try {
      const hooks = lazyRequire<{
        AsyncLocalStorageContextManager: new () => { enable(): unknown };
      }>('@opentelemetry/context-async-hooks');
      registered.contextManager = api.context.setGlobalContextManager(
        new hooks.AsyncLocalStorageContextManager().enable(),
      );
    } catch {
      // Without it spans still export; a parent is only followed within one synchronous call.
    }
  }
  return {
    provider,
    registered,
    unregister() {
      if (registered.provider) api?.trace.disable();
      if (registered.contextManager) api?.context.disable();
      registered.provider = false;
      registered.contextManager = false;
    },
  };
}
