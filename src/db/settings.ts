/**
 * The router's options resolved once, at the public edge: every number checked and named in its
 * ValidationError, durations turned into the units the parts use.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { type MetricsSink, noopMetrics } from '../core/metrics.js';
import { assertNumber, assertObject } from '../core/validate.js';
import type { NodeSettings } from './health.js';
import {
  type DatabaseRouterOptions,
  type DbNodeInput,
  type DbPoolOptions,
  type ReadYourWrites,
  assertNodeInput,
  poolConfigFrom,
  resolvePoolOptions,
  resolvePrimaries,
  resolveReadYourWrites,
} from './options.js';

/** {@link DatabaseRouterOptions} checked, with defaults applied. */
export interface RouterSettings {
  primaries: DbNodeInput[];
  replicas: DbNodeInput[];
  pool: Required<DbPoolOptions>;
  ryw: ReadYourWrites;
  maxLag: number | undefined;
  /** Seconds between health checks; 0 for none. */
  interval: number;
  /** Seconds a health check (and a primary probe) may take. */
  checkTimeout: number;
  maxFails: number;
  /** Seconds. */
  failTimeout: number;
  fallbackLimit: number | undefined;
  metrics: MetricsSink;
}

/** Checks the options of a `DatabaseRouter`. */
export function resolveRouterSettings(options: unknown): RouterSettings {
  const o = assertObject(options, 'options') as unknown as DatabaseRouterOptions;
  const primaries = resolvePrimaries(o.primary, o.primaries);
  const replicaInputs = o.replicas ?? [];
  if (!Array.isArray(replicaInputs)) {
    throw new ValidationError(
      `replicas must be an array, received ${describeValue(replicaInputs)}`,
      {
        option: 'replicas',
      },
    );
  }
  const replicas = replicaInputs.map((r, i) => assertNodeInput(r, `replicas[${i}]`));
  const pool = resolvePoolOptions(o.pool);
  const ryw = resolveReadYourWrites(o.readYourWrites);
  const maxLag =
    o.maxReplicaLag === undefined
      ? undefined
      : assertNumber(o.maxReplicaLag, 'maxReplicaLag (seconds)', { min: 0 });
  const interval =
    o.healthCheckInterval === undefined
      ? 5
      : assertNumber(o.healthCheckInterval, 'healthCheckInterval (seconds)', { min: 0 });
  const checkTimeout =
    o.healthCheckTimeout === undefined
      ? 5
      : assertNumber(o.healthCheckTimeout, 'healthCheckTimeout (seconds)', { positive: true });
  const maxFails =
    o.maxFails === undefined ? 1 : assertNumber(o.maxFails, 'maxFails', { integer: true, min: 1 });
  const failTimeout =
    o.failTimeout === undefined
      ? 10
      : assertNumber(o.failTimeout, 'failTimeout (seconds)', { positive: true });
  if (o.primaryFallbackLimit !== undefined) {
    assertNumber(o.primaryFallbackLimit, 'primaryFallbackLimit', { integer: true, min: 0 });
  }
  const metrics: MetricsSink = o.metrics ?? noopMetrics;
  if (typeof metrics.counter !== 'function') {
    throw new ValidationError(`metrics must be a MetricsSink, received ${describeValue(metrics)}`, {
      option: 'metrics',
    });
  }
  return {
    primaries,
    replicas,
    pool,
    ryw,
    maxLag,
    interval,
    checkTimeout,
    maxFails,
    failTimeout,
    fallbackLimit: o.primaryFallbackLimit,
    metrics,
  };
}

/** What every node of a router is built with: its pool and health settings, and the hooks. */
export function nodeSettingsOf(
  s: RouterSettings,
  hooks: Pick<NodeSettings, 'onEject' | 'onRestore' | 'onIdleError'>,
): NodeSettings {
  return {
    prePing: s.pool.prePing,
    prePingAfterMs: s.pool.prePingAfter * 1000,
    maxFails: s.maxFails,
    failTimeoutMs: s.failTimeout * 1000,
    healthCheckTimeoutMs: s.checkTimeout * 1000,
    poolConfig: poolConfigFrom(s.pool),
    metrics: s.metrics,
    ...hooks,
  };
}
