/**
 * azscale/observability: the `Metrics` sink every primitive reports to (Prometheus text through
 * prom-client, sliding-window percentiles, the snapshot the scaling advisor reads), optional
 * OpenTelemetry tracing, and liveness/readiness health checks.
 * @packageDocumentation
 */
export {
  DEFAULT_BYTES_BUCKETS,
  DEFAULT_SECONDS_BUCKETS,
  Metrics,
  type GaugeCallback,
  type HistogramSummary,
  type MetricKind,
  type MetricsEvents,
  type MetricsOptions,
  type MetricsSnapshot,
} from './metrics.js';
export {
  annotateActiveSpan,
  currentTraceContext,
  disableTracing,
  isTracingEnabled,
  setupTracing,
  withSpan,
  withTraceContext,
  type SpanAttributes,
  type SpanAttributeValue,
  type SpanHandle,
  type SpanKindName,
  type TraceCarrier,
  type TracerLike,
  type TracerProviderLike,
  type Tracing,
  type TracingOptions,
  type WithSpanOptions,
  type OtlpExporterOptions,
  type SpanExporterLike,
} from './tracing.js';
export { messagingSpanAttributes, postgresSpanAttributes, redisSpanAttributes } from './semconv.js';
export {
  HealthRegistry,
  health,
  postgresHealthCheck,
  redisHealthCheck,
  workerHealthCheck,
  type FastifyInstanceLike,
  type FastifyReplyLike,
  type HealthCheck,
  type HealthCheckOptions,
  type HealthCheckResult,
  type HealthProbe,
  type HealthRegistryOptions,
  type HealthReport,
  type HealthRoutes,
} from './health.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/observability'` works
// too (the same classes as the root export).
export { AzscaleError, TimeoutError, ValidationError } from '../core/errors.js';
