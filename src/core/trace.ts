/**
 * The tracing seam every module uses: {@link withSpan} wraps an operation in a span named
 * `azscale.<module>.<op>`. Until tracing is set up (`setupTracing` in `azscale/observability`)
 * a span costs one property read and a direct call, and `@opentelemetry/api` is neither required
 * nor loaded. This file imports nothing but azscale's core, so any module may depend on it.
 */
import { lazyRequire } from './lazy-require.js';

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

/** The W3C trace-context fields of the active span, to carry across a queue or a process. */
export interface TraceCarrier {
  /** `00-<trace id>-<span id>-<flags>` */
  traceparent: string;
}

/** The part of `@opentelemetry/api` azscale uses. @internal */
export interface OtelApi {
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

/** The instrumentation scope version azscale's tracer is asked for. @internal */
export const VERSION = '0.1.0';
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
 * Installs the tracer azscale's spans go to (`undefined` turns them off). Used by `setupTracing`;
 * returns the generation, so a stale handle cannot disable a newer setup.
 * @internal
 */
export function installTracer(
  tracer: TracerLike | undefined,
  api: OtelApi | undefined,
  serviceName: string,
): number {
  const generation = ++state.generation;
  state.api = api;
  state.tracer = tracer;
  state.serviceName = serviceName;
  return generation;
}

/** The generation of the current setup (see {@link installTracer}). @internal */
export function tracingGeneration(): number {
  return state.generation;
}

/** The loaded `@opentelemetry/api`, loading it on first call (undefined when not installed). @internal */
export function otelApi(): OtelApi | undefined {
  return state.api ?? loadApi();
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
