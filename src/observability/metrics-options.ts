/**
 * Parsing and defaults of {@link MetricsOptions}: every option checked at the public edge, with
 * the option named in the error.
 */
import type { Registry } from 'prom-client';
import { ValidationError, describeValue } from '../core/errors.js';
import {
  assertFunction,
  assertNumber,
  assertObject,
  assertSeconds,
  assertString,
} from '../core/validate.js';
import { coarseNow } from './coarse-clock.js';
import { NAME_RE, checkBuckets, checkStringMap } from './metric-families.js';
import { DEFAULT_SECONDS_BUCKETS, type MetricKind, type MetricsOptions } from './metrics-types.js';
import { SketchMapping } from './sketch.js';

/** {@link MetricsOptions} checked, with defaults applied and durations in milliseconds. */
export interface ResolvedMetricsOptions {
  prefix: string;
  promRegistry: Registry | undefined;
  buckets: readonly number[];
  bucketsByMetric: Readonly<Record<string, readonly number[]>>;
  mapping: SketchMapping;
  windowMs: number;
  slots: number;
  gaugeTimeoutMs: number;
  help: Readonly<Record<string, string>>;
  recordKinds: Readonly<Record<string, MetricKind>>;
  maxSeries: number;
  requestsMetric: string;
  errorsMetric: string;
  latencyMetric: string;
  queueDepthMetric: string;
  llmRequestsMetric: string;
  llmRateLimitedMetric: string;
  now: () => number;
  /** Stamps histogram observations: the injected clock, else the shared coarse clock. */
  stamp: () => number;
}

/** Checks `options` and applies the defaults. */
export function resolveMetricsOptions(options: MetricsOptions): ResolvedMetricsOptions {
  const o = {} as ResolvedMetricsOptions;
  assertObject(options, 'options');
  const prefix = options.prefix ?? 'azscale_';
  if (typeof prefix !== 'string' || (prefix !== '' && !NAME_RE.test(prefix))) {
    throw new ValidationError(
      `prefix must be '' or match ${NAME_RE}, received ${describeValue(prefix)}`,
      { option: 'prefix' },
    );
  }
  o.prefix = prefix;
  if (options.registry !== undefined) {
    const r = options.registry as Partial<Registry> | null;
    if (
      typeof r !== 'object' ||
      r === null ||
      typeof r.registerMetric !== 'function' ||
      typeof r.metrics !== 'function'
    ) {
      throw new ValidationError(
        `registry must be a prom-client Registry, received ${describeValue(r)}`,
        { option: 'registry' },
      );
    }
    o.promRegistry = options.registry;
  }
  o.buckets = checkBuckets(options.buckets ?? DEFAULT_SECONDS_BUCKETS, 'buckets');
  const byMetric = assertObject(options.bucketsByMetric ?? {}, 'bucketsByMetric') ?? {};
  for (const [k, v] of Object.entries(byMetric)) checkBuckets(v, `bucketsByMetric.${k}`);
  o.bucketsByMetric = byMetric as Record<string, readonly number[]>;
  const alpha = assertNumber(options.relativeAccuracy ?? 0.01, 'relativeAccuracy', {
    min: 0.0001,
    max: 0.1,
  });
  o.mapping = new SketchMapping(alpha);
  o.windowMs = assertNumber(options.window ?? 60, 'window (seconds)', { positive: true }) * 1000;
  o.slots = assertNumber(options.windowSlots ?? 6, 'windowSlots', {
    integer: true,
    min: 2,
    max: 60,
  });
  o.gaugeTimeoutMs = assertSeconds(options.gaugeTimeout ?? 5, 'gaugeTimeout') * 1000;
  o.help = checkStringMap(options.help, 'help');
  const kinds = checkStringMap(options.recordKinds, 'recordKinds');
  for (const [k, v] of Object.entries(kinds)) {
    if (v !== 'counter' && v !== 'gauge' && v !== 'histogram') {
      throw new ValidationError(
        `recordKinds.${k} must be 'counter', 'gauge' or 'histogram', received ${describeValue(v)}`,
        { option: 'recordKinds' },
      );
    }
  }
  o.recordKinds = kinds as Record<string, MetricKind>;
  o.maxSeries = assertNumber(options.maxSeriesPerMetric ?? 1000, 'maxSeriesPerMetric', {
    integer: true,
    min: 1,
  });
  o.requestsMetric = assertString(
    options.requestsMetric ?? 'http_requests_total',
    'requestsMetric',
  );
  o.errorsMetric = assertString(options.errorsMetric ?? 'http_errors_total', 'errorsMetric');
  o.latencyMetric = assertString(
    options.latencyMetric ?? 'http_request_duration_seconds',
    'latencyMetric',
  );
  o.queueDepthMetric = assertString(options.queueDepthMetric ?? 'queue_depth', 'queueDepthMetric');
  o.llmRequestsMetric = assertString(
    options.llmRequestsMetric ?? 'llm_requests_total',
    'llmRequestsMetric',
  );
  o.llmRateLimitedMetric = assertString(
    options.llmRateLimitedMetric ?? 'llm_rate_limited_total',
    'llmRateLimitedMetric',
  );
  // Read Date.now at each call (not once), so test fake timers that replace Date apply.
  o.now = options.now === undefined ? () => Date.now() : assertFunction(options.now, 'now');
  o.stamp = options.now === undefined ? coarseNow : o.now;
  return o;
}
