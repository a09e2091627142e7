/**
 * The tracing seam. Every azscale module wraps its operations in {@link withSpan}; until
 * {@link setupTracing} is called that is one property read and a direct call, and
 * `@opentelemetry/api` is neither required nor loaded. After it, spans named
 * `azscale.<module>.<op>` go to the configured tracer provider, parented to the caller's active
 * span.
 *
 * This file loads nothing at import time but azscale's core, so every module can depend on it
 * without pulling in prom-client or OpenTelemetry.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { assertObject, assertString } from '../core/validate.js';
import { lazyRequire } from '../core/lazy-require.js';
import {
  type CreatedProvider,
  type OtlpExporterOptions,
  type SpanExporterLike,
  assertExporterOption,
  createProvider,
} from './tracing-sdk.js';

export type { OtlpExporterOptions, SpanExporterLike } from './tracing-sdk.js';

/** Span attribute values OpenTelemetry accepts. */
export type SpanAttributeValue =
  | string
  | number
  | boolean
  | readonly string[]
  | readonly number[]
  | readonly boolean[];

/** Span attributes by key, e.g. `{ 'azscale.key_count': 3 }`. */
export type SpanAttributes = Readonly<Record<string, SpanAttributeValue | undefined>>;

/** What a {@link withSpan} callback may do with its span (a no-op object when tracing is off). */
export interface SpanHandle {
  /** True when the span is recorded (tracing set up and sampled). */
  isRecording(): boolean;
  /** Sets one attribute. */
  setAttribute(key: string, value: SpanAttributeValue): unknown;
  /** Sets several attributes. */
  setAttributes(attributes: SpanAttributes): unknown;
  /** Adds a timestamped event to the span. */
  addEvent(name: string, attributes?: SpanAttributes): unknown;
}

/** The span kinds {@link withSpan} can start. @default 'internal' */
export type SpanKindName = 'internal' | 'server' | 'client' | 'producer' | 'consumer';

/** Options of {@link withSpan}. */
export interface WithSpanOptions {
  /** The span kind: `client` for a call to Redis/PostgreSQL, `producer`/`consumer` for tasks. */
  kind?: SpanKindName;
}

/** The part of an OpenTelemetry `Span` azscale uses. */
interface OtelSpan extends SpanHandle {
  recordException(exception: Error | string): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
  spanContext(): { traceId: string; spanId: string; traceFlags: number };
}

/** The part of an OpenTelemetry `Tracer` azscale uses. */
export interface TracerLike {
  /**
   * Starts a span, makes it active while `fn` runs and passes it to `fn`.
   * @typeParam F - the callback, whose return value is passed through.
   */
  startActiveSpan<F extends (span: never) => unknown>(
    name: string,
    options: { attributes?: SpanAttributes; kind?: number },
    fn: F,
  ): ReturnType<F>;
}

/** The part of an OpenTelemetry `TracerProvider` azscale uses (any SDK provider fits). */
export interface TracerProviderLike {
  /** The tracer for an instrumentation scope (azscale asks for `azscale`). */
  getTracer(name: string, version?: string): TracerLike;
}

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

/** The W3C trace-context fields of the active span, to carry across a queue or a process. */
export interface TraceCarrier {
  /** `00-<trace id>-<span id>-<flags>` */
  traceparent: string;
}

/** The part of `@opentelemetry/api` azscale uses. */
interface OtelApi {
  trace: {
    getTracer(name: string, version?: string): TracerLike;
    getActiveSpan(): OtelSpan | undefined;
    setSpanContext(ctx: unknown, sc: object): unknown;
  };
  context: {
    active(): unknown;
    with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
      ctx: unknown,
      fn: F,
      thisArg?: unknown,
      ...args: A
    ): ReturnType<F>;
  };
}

interface TracingState {
  tracer: TracerLike | undefined;
  api: OtelApi | undefined;
  serviceName: string;
  /** Bumped on every setup/disable so a stale handle cannot disable a newer setup. */
  generation: number;
}

const VERSION = '0.1.0';
// Shared through the global object so the ESM and the CJS copy of azscale, when both are loaded,
// trace alike (OpenTelemetry's own API keeps its registrations the same way).
const STATE_KEY = Symbol.for('azscale.tracing.v1');
const g = globalThis as unknown as Record<symbol, TracingState | undefined>;
const state: TracingState = (g[STATE_KEY] ??= {
  tracer: undefined,
  api: undefined,
  serviceName: '',
  generation: 0,
});

const KINDS: Record<SpanKindName, number> = {
  internal: 0,
  server: 1,
  client: 2,
  producer: 3,
  consumer: 4,
};
const STATUS_ERROR = 2;

const NOOP_SPAN: SpanHandle = Object.freeze({
  isRecording: () => false,
  setAttribute: () => NOOP_SPAN,
  setAttributes: () => NOOP_SPAN,
  addEvent: () => NOOP_SPAN,
});

/** Loads `@opentelemetry/api` if it can be resolved, else returns undefined. */
function loadApi(): OtelApi | undefined {
  try {
    const api = lazyRequire<Partial<OtelApi>>('@opentelemetry/api');
    if (api?.trace && api.context) return api as OtelApi;
  } catch {
    // Not installed (or not visible to us): tracing without a provider stays off.
  }
  return undefined;
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
  const api = state.api ?? loadApi();
  let tracer: TracerLike | undefined;
  let reason: string | undefined;
  const chosen = created?.provider ?? provider;
  if (chosen) tracer = chosen.getTracer('azscale', VERSION);
  else if (api) tracer = api.trace.getTracer('azscale', VERSION);
  else reason = '@opentelemetry/api is not installed and no tracerProvider was given';

  const generation = ++state.generation;
  state.api = api;
  state.tracer = tracer;
  state.serviceName = serviceName;
  const disable = () => {
    if (state.generation === generation) disableTracing();
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

/** Turns azscale's spans off (withSpan becomes a plain call again). */
export function disableTracing(): void {
  state.generation++;
  state.tracer = undefined;
}

/** True once {@link setupTracing} enabled spans: lets a caller skip building costly attributes. */
export function isTracingEnabled(): boolean {
  return state.tracer !== undefined;
}

/** azscale's own spans, so {@link annotateActiveSpan} never writes to an app's span. */
const ownSpans = new WeakSet<object>();

/**
 * Adds `attributes` to the active span when it is one of azscale's (a no-op when tracing is off,
 * no span is active, or the active span is the app's). Lets the layer that knows the server
 * (the Redis connection, the PostgreSQL node) label the operation's span without being passed it.
 */
export function annotateActiveSpan(attributes: SpanAttributes | (() => SpanAttributes)): void {
  if (state.tracer === undefined || state.api === undefined) return;
  const span = state.api.trace.getActiveSpan();
  if (!span || !ownSpans.has(span) || !span.isRecording()) return;
  span.setAttributes(typeof attributes === 'function' ? attributes() : attributes);
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as PromiseLike<unknown>).then === 'function'
  );
}

function fail(span: OtelSpan, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({
    code: STATUS_ERROR,
    message: e instanceof Error ? e.message : String(e),
  });
}

/**
 * Runs `fn` inside a span named `name` (convention: `azscale.<module>.<op>`, e.g.
 * `azscale.cache.get`) with `attributes`, and returns what `fn` returns. The span is the child
 * of the caller's active span and is the active span while `fn` runs (including after its
 * awaits), so nested calls form a tree. It ends when `fn` returns or, for a promise, settles; a
 * throw or rejection is recorded on it (status ERROR) and passed on unchanged.
 *
 * Before {@link setupTracing}, `fn` is called directly with a no-op span.
 *
 * @example
 * return withSpan('azscale.cache.get', { 'azscale.key_count': 1 }, async (span) => {
 *   const v = await l2.get(key);
 *   span.setAttribute('azscale.cache.hit', v !== undefined);
 *   return v;
 * });
 */
export function withSpan<T>(
  name: string,
  attributes: SpanAttributes | undefined,
  fn: (span: SpanHandle) => T,
  options?: WithSpanOptions,
): T {
  const tracer = state.tracer;
  if (tracer === undefined) return fn(NOOP_SPAN);
  let attrs = attributes;
  if (state.serviceName) attrs = { ...attributes, 'azscale.service.name': state.serviceName };
  const opts = options?.kind
    ? { attributes: attrs, kind: KINDS[options.kind] }
    : { attributes: attrs };
  return tracer.startActiveSpan(name, opts, (span: OtelSpan): T => {
    ownSpans.add(span);
    let result: T;
    try {
      result = fn(span);
    } catch (e) {
      fail(span, e);
      span.end();
      throw e;
    }
    if (isThenable(result)) {
      return result.then(
        (v) => {
          span.end();
          return v;
        },
        (e: unknown) => {
          fail(span, e);
          span.end();
          throw e;
        },
      ) as T;
    }
    span.end();
    return result;
  });
}

/**
 * The active span's W3C `traceparent`, to store with a task or message so the consumer's span
 * can join the producer's trace ({@link withTraceContext}). Undefined when tracing is off or no
 * span is active.
 */
export function currentTraceContext(): TraceCarrier | undefined {
  if (state.tracer === undefined || state.api === undefined) return undefined;
  const span = state.api.trace.getActiveSpan();
  if (!span) return undefined;
  const sc = span.spanContext();
  if (!/^[0-9a-f]{32}$/.test(sc.traceId) || /^0+$/.test(sc.traceId)) return undefined;
  const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
  return { traceparent: `00-${sc.traceId}-${sc.spanId}-${flags}` };
}

const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Runs `fn` with the span described by `carrier` (from {@link currentTraceContext}, possibly in
 * another process) as the active parent, so spans `fn` starts join that trace. A missing or
 * malformed carrier, or tracing being off, just calls `fn`.
 */
export function withTraceContext<T>(carrier: TraceCarrier | undefined | null, fn: () => T): T {
  const api = state.api;
  if (state.tracer === undefined || api === undefined || !carrier) return fn();
  const m =
    typeof carrier.traceparent === 'string' ? TRACEPARENT_RE.exec(carrier.traceparent) : null;
  if (!m) return fn();
  const ctx = api.trace.setSpanContext(api.context.active(), {
    traceId: m[1],
    spanId: m[2],
    traceFlags: Number.parseInt(m[3]!, 16),
    isRemote: true,
  });
  return api.context.with(ctx, fn);
}
