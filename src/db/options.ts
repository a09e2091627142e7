import type { Pool, PoolConfig } from 'pg';
import { assertDuration } from '../core/timers.js';
import { ValidationError, describeValue } from '../core/errors.js';
import type { MetricsSink } from '../core/metrics.js';
import { assertNumber, assertObject } from '../core/validate.js';

/**
 * A node of the router: a `postgresql://` URL (we create and own the pool), a pg `PoolConfig`
 * (we create and own the pool; its fields win over {@link DbPoolOptions}), or a pg `Pool` you
 * created (used as is and never ended by `close()`).
 */
export type DbNodeInput = string | PoolConfig | Pool;

/**
 * Pool settings with the seed's (SQLAlchemy `QueuePool`) names and units, applied to every pool the
 * router creates. A `Pool` you pass in keeps its own settings; `prePing` applies to it too, since
 * the router borrows its clients.
 */
export interface DbPoolOptions {
  /**
   * Connections kept open per node (pg-pool `min`: they are never closed for being idle).
   * @default 20
   */
  poolSize?: number;
  /**
   * Extra connections opened under load on top of `poolSize` and closed after `idleTimeout`
   * seconds unused. pg-pool `max` = `poolSize + maxOverflow`.
   * @default 10
   */
  maxOverflow?: number;
  /**
   * Seconds to wait for a free connection (and, in pg-pool, for a new connection to be
   * established) before the call fails. pg-pool `connectionTimeoutMillis`.
   * @default 30
   */
  poolTimeout?: number;
  /**
   * Seconds after which a connection is closed and replaced (once it is back in the pool).
   * pg-pool `maxLifetimeSeconds`. `0` keeps connections forever.
   * @default 3600
   */
  poolRecycle?: number;
  /**
   * Validate a connection when it is borrowed, so a connection the server or a proxy dropped while
   * it sat idle is replaced instead of failing the query. As in HikariCP, a connection used within
   * the last {@link DbPoolOptions.prePingAfter} seconds is trusted without a round trip.
   * @default true
   */
  prePing?: boolean;
  /**
   * Seconds a connection may sit idle and still be borrowed without a `prePing` check.
   * @default 0.5
   */
  prePingAfter?: number;
  /**
   * Seconds an overflow connection (above `poolSize`) may stay idle before it is closed.
   * pg-pool `idleTimeoutMillis`.
   * @default 10
   */
  idleTimeout?: number;
}

/** Rails-style read-your-writes: after a write, reads with that `ctx` use the primary for a while. */
export interface ReadYourWritesWindow {
  /** Selects the time-window mode. */
  mode: 'window';
  /** Seconds after a write during which reads with the same `ctx` go to the primary. */
  seconds: number;
}

/** WAL-position read-your-writes: a replica serves a `ctx` only once it has replayed its writes. */
export interface ReadYourWritesLsn {
  /** Selects the WAL-position mode. */
  mode: 'lsn';
  /**
   * Seconds after a ctx's last write during which reads that no fit replica can serve yet (it
   * has not replayed the ctx's position) go to the primary unlimited. Later such reads still go
   * to the primary (they must see the write) but as fallback reads, within
   * `primaryFallbackLimit`: a stuck replica cannot make a ctx an unlimited primary load for good.
   * A position past the primary's own (a restore, a timeline switch, a forged ctx) is never
   * waited for: it is dropped from the ctx at the first read that meets it.
   * @default 30
   */
  maxAge?: number;
}

/** How reads with a `ctx` see that ctx's own earlier writes. */
export type ReadYourWrites = false | ReadYourWritesLsn | ReadYourWritesWindow;

/** Options of {@link DatabaseRouter}. */
export interface DatabaseRouterOptions {
  /**
   * The primary: every write and every transaction that is not read-only goes here. A list is
   * taken as primary candidates, like {@link DatabaseRouterOptions.primaries}. One of `primary`
   * and `primaries` is required.
   * @example 'postgresql://app@db-a:5432/app'
   */
  primary?: DbNodeInput | DbNodeInput[];
  /**
   * Primary candidates for high availability: the servers that may be the primary after a
   * failover (the primary and the standbys that may be promoted; a standby may also be listed
   * in `replicas`). Writes go to the one that is not in recovery (`pg_is_in_recovery()`, as
   * libpq's `target_session_attrs=read-write`); after the primary is lost or found in recovery
   * the next write asks them all again, so a promoted standby takes writes without a restart.
   * Appended after `primary` when both are given.
   * @default []
   * @example ['postgresql://app@db-a:5432/app', 'postgresql://app@db-b:5432/app']
   */
  primaries?: DbNodeInput[];
  /**
   * Streaming replicas that serve reads, round-robin. Empty: every read goes to the primary.
   * @default []
   */
  replicas?: DbNodeInput[];
  /** Pool settings for the pools the router creates (the seed's names). */
  pool?: DbPoolOptions;
  /**
   * Read-your-writes for reads that carry a `ctx`: `{ mode: 'lsn' }` compares WAL positions,
   * `{ mode: 'window', seconds }` pins the ctx to the primary for `seconds` after each write.
   * @default false
   */
  readYourWrites?: ReadYourWrites;
  /**
   * Seconds of replication lag above which a replica gets no reads until it catches up. The lag
   * is measured by the health check. Unset: lag is reported but not acted on.
   */
  maxReplicaLag?: number;
  /**
   * Seconds between health checks (liveness, replay position, lag) of every node. `0` turns the
   * periodic check off; ejected replicas are then probed on demand by reads.
   * @default 5
   */
  healthCheckInterval?: number;
  /**
   * Seconds a health check may take before it counts as a failure.
   * @default 5
   */
  healthCheckTimeout?: number;
  /**
   * Connection failures within `failTimeout` seconds that eject a replica (nginx `max_fails`).
   * A failed health check ejects at once.
   * @default 1
   */
  maxFails?: number;
  /**
   * Seconds over which failures are counted, and for which an ejected replica gets no reads
   * before it is probed again (nginx `fail_timeout`).
   * @default 10
   */
  failTimeout?: number;
  /**
   * Reads the primary takes at once when no replica is fit (all ejected or lagging), so that a
   * replica outage does not flood the primary. Reads over the limit wait up to `poolTimeout`
   * seconds for a slot, then fail with LimitExceededError. `0`: never fall back. Does not apply
   * when no replicas are configured, nor to reads that read-your-writes sends to the primary.
   * @default half the primary pool's `max` (15 with the default pool), at least 1
   */
  primaryFallbackLimit?: number;
  /** Where to report metrics. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Defaults of {@link DbPoolOptions}, the seed's values. */
export const POOL_DEFAULTS: Required<DbPoolOptions> = {
  poolSize: 20,
  maxOverflow: 10,
  poolTimeout: 30,
  poolRecycle: 3600,
  prePing: true,
  prePingAfter: 0.5,
  idleTimeout: 10,
};

/** Validates `pool` and fills in defaults. */
export function resolvePoolOptions(value: unknown): Required<DbPoolOptions> {
  const o = assertObject(value, 'pool', true) ?? {};
  const out = { ...POOL_DEFAULTS };
  if (o.poolSize !== undefined)
    out.poolSize = assertNumber(o.poolSize, 'pool.poolSize', { integer: true, min: 0 });
  if (o.maxOverflow !== undefined) {
    out.maxOverflow = assertNumber(o.maxOverflow, 'pool.maxOverflow', { integer: true, min: 0 });
  }
  if (out.poolSize + out.maxOverflow < 1) {
    throw new ValidationError(
      `pool.poolSize + pool.maxOverflow must be at least 1, received ${out.poolSize} + ${out.maxOverflow}`,
      { option: 'pool.poolSize' },
    );
  }
  if (o.poolTimeout !== undefined) {
    out.poolTimeout = assertNumber(o.poolTimeout, 'pool.poolTimeout (seconds)', { positive: true });
  }
  if (o.poolRecycle !== undefined) {
    out.poolRecycle = assertNumber(o.poolRecycle, 'pool.poolRecycle (seconds)', { min: 0 });
  }
  if (o.prePing !== undefined) {
    if (typeof o.prePing !== 'boolean') {
      throw new ValidationError(
        `pool.prePing must be a boolean, received ${describeValue(o.prePing)}`,
        {
          option: 'pool.prePing',
        },
      );
    }
    out.prePing = o.prePing;
  }
  if (o.prePingAfter !== undefined) {
    out.prePingAfter = assertNumber(o.prePingAfter, 'pool.prePingAfter (seconds)', { min: 0 });
  }
  if (o.idleTimeout !== undefined) {
    out.idleTimeout = assertNumber(o.idleTimeout, 'pool.idleTimeout (seconds)', { min: 0 });
  }
  return out;
}

/** pg-pool settings for a pool we create, from the seed's names. */
export function poolConfigFrom(p: Required<DbPoolOptions>): PoolConfig {
  return {
    max: p.poolSize + p.maxOverflow,
    min: p.poolSize,
    connectionTimeoutMillis: Math.round(p.poolTimeout * 1000),
    // pg-pool treats 0 as "no limit", the same meaning poolRecycle=0 has here.
    maxLifetimeSeconds: p.poolRecycle,
    idleTimeoutMillis: Math.round(p.idleTimeout * 1000),
  };
}

/** Validates `readYourWrites`. */
export function resolveReadYourWrites(value: unknown): ReadYourWrites {
  if (value === undefined || value === false) return false;
  const o = assertObject(value, 'readYourWrites');
  if (!o || (o.mode !== 'lsn' && o.mode !== 'window')) {
    throw new ValidationError(
      `readYourWrites must be false, { mode: 'lsn' } or { mode: 'window', seconds }, received ${describeValue(value)}`,
      { option: 'readYourWrites' },
    );
  }
  if (o.mode === 'lsn') {
    return o.maxAge === undefined
      ? { mode: 'lsn' }
      : { mode: 'lsn', maxAge: assertDuration(o.maxAge, 'readYourWrites.maxAge') };
  }
  return { mode: 'window', seconds: assertDuration(o.seconds, 'readYourWrites.seconds (seconds)') };
}

/** True when `v` looks like a pg `Pool` (duck-typed: it may come from another copy of pg). */
export function isPgPool(v: unknown): v is Pool {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Pool).connect === 'function' &&
    typeof (v as Pool).query === 'function' &&
    typeof (v as Pool).end === 'function' &&
    typeof (v as Pool).on === 'function'
  );
}

/** Where a node lives, without credentials (for stats, events and error context). */
export interface DbNodeAddress {
  /** Host name or address (from the config, `PGHOST` or `localhost`). */
  host: string;
  /** TCP port (from the config, `PGPORT` or 5432). */
  port: number;
  /** Database name (from the config or `PGDATABASE`; empty when unset). */
  database: string;
}

/** The password-free address of a node input. */
export function addressOf(input: DbNodeInput): DbNodeAddress {
  let cfg: PoolConfig;
  if (typeof input === 'string') cfg = { connectionString: input };
  else if (isPgPool(input))
    cfg = ((input as unknown as { options?: PoolConfig }).options ?? {}) as PoolConfig;
  else cfg = input;
  let host = cfg.host ?? process.env.PGHOST ?? 'localhost';
  let port = Number(cfg.port ?? process.env.PGPORT ?? 5432);
  let database = cfg.database ?? process.env.PGDATABASE ?? '';
  if (cfg.connectionString) {
    try {
      const u = new URL(cfg.connectionString);
      host = decodeURIComponent(u.hostname || host).replace(/^\[|\]$/g, '');
      port = u.port ? Number(u.port) : port;
      database = decodeURIComponent(u.pathname.replace(/^\//, '')) || database;
      const hostParam = u.searchParams.get('host');
      if (hostParam) host = hostParam;
    } catch {
      // Not a URL (a libpq keyword string): keep what the fields say.
    }
  }
  return { host, port, database };
}

/** Validates `primary` and `primaries` into the list of primary candidates (at least one). */
export function resolvePrimaries(primary: unknown, primaries: unknown): DbNodeInput[] {
  const out: DbNodeInput[] = [];
  if (Array.isArray(primary)) {
    for (const [i, p] of primary.entries()) out.push(assertNodeInput(p, `primary[${i}]`));
  } else if (primary !== undefined) {
    out.push(assertNodeInput(primary, 'primary'));
  }
  if (primaries !== undefined) {
    if (!Array.isArray(primaries)) {
      throw new ValidationError(
        `primaries must be an array of postgresql:// URLs, pg PoolConfigs or pg Pools, received ${describeValue(primaries)}`,
        { option: 'primaries' },
      );
    }
    for (const [i, p] of primaries.entries()) out.push(assertNodeInput(p, `primaries[${i}]`));
  }
  if (out.length === 0) {
    throw new ValidationError(
      `primary must be a postgresql:// URL, a pg PoolConfig or a pg Pool (or primaries a non-empty list of them), received ${describeValue(primary)}`,
      { option: 'primary' },
    );
  }
  if (out.length > 64) {
    throw new ValidationError(`primaries may list at most 64 candidates, received ${out.length}`, {
      option: 'primaries',
    });
  }
  return out;
}

/** Validates one node input (a URL, a PoolConfig or a Pool). */
export function assertNodeInput(value: unknown, option: string): DbNodeInput {
  if (typeof value === 'string') {
    if (!/^postgres(?:ql)?:\/\//i.test(value)) {
      throw new ValidationError(
        `${option} must be a postgresql:// URL, a pg PoolConfig or a pg Pool, received a string that is not a postgresql:// URL`,
        { option },
      );
    }
    return value;
  }
  if (isPgPool(value)) return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value))
    return value as PoolConfig;
  throw new ValidationError(
    `${option} must be a postgresql:// URL, a pg PoolConfig or a pg Pool, received ${describeValue(value)}`,
    { option },
  );
}
