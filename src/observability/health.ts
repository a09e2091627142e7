import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError, describeValue } from '../core/errors.js';
import type { Disposer } from '../core/events.js';
import type { GaugeHandle, HistogramHandle, MetricsSink } from '../core/metrics.js';
import { noopMetrics } from '../core/metrics.js';
import { assertFunction, assertObject, assertSeconds, assertString } from '../core/validate.js';

/**
 * A health check. It fails when it returns (or resolves to) `false` or an object saying so
 * (`{ ok: false }`, `{ healthy: false }`, `{ status: 'down' | 'fail' | 'error' | 'unhealthy' }`),
 * throws, rejects or outlives its timeout; anything else passes. The signal aborts at the
 * timeout, so a check can stop its work.
 */
export type HealthCheck = (signal: AbortSignal) => unknown;

/** The probes a check can take part in. */
export type HealthProbe = 'liveness' | 'readiness';

/** Options of {@link HealthRegistry.register}. */
export interface HealthCheckOptions {
  /** Seconds the check may take before it counts as failed. @default the registry's `timeout` */
  timeout?: number;
  /**
   * Probes the check belongs to. Backends (Redis, PostgreSQL) belong to readiness only: a
   * liveness failure restarts the pod, which does not bring a database back.
   * @default ['readiness']
   */
  probes?: readonly HealthProbe[];
  /**
   * When false, a failure is reported but does not fail the probe.
   * @default true
   */
  critical?: boolean;
}

/** Options of {@link HealthRegistry}. */
export interface HealthRegistryOptions {
  /**
   * Default per-check timeout in seconds. Keep it under the orchestrator's probe timeout
   * (Kubernetes' `timeoutSeconds` defaults to 1).
   * @default 1
   */
  timeout?: number;
  /**
   * Reports `health_check_up{check}` (1/0) and `health_check_duration_seconds{check}`.
   * @default noopMetrics
   */
  metrics?: MetricsSink;
}

/** The outcome of one check. */
export interface HealthCheckResult {
  /** `up` or `down`. */
  status: 'up' | 'down';
  /** False for a non-critical check (its failure does not fail the probe). */
  critical: boolean;
  /** How long the check ran, in seconds. */
  duration: number;
  /** Why it failed: the error message, `timed out after Ns`, or `returned false`. */
  error?: string;
  /** True when the check ran past its timeout. */
  timedOut?: boolean;
}

/** The outcome of a probe: `up` when every critical check is up. */
export interface HealthReport {
  /** `up` or `down`. */
  status: 'up' | 'down';
  /** Same as `status === 'up'`. */
  ok: boolean;
  /** The probe run. */
  probe: HealthProbe;
  /** Per check, by name. */
  checks: Record<string, HealthCheckResult>;
  /** When the probe ran, milliseconds since the epoch. */
  timestampMs: number;
}

interface Entry {
  name: string;
  check: HealthCheck;
  timeoutMs: number;
  probes: ReadonlySet<HealthProbe>;
  critical: boolean;
  up: GaugeHandle;
  duration: HistogramHandle;
}

/** The part of a Fastify reply the handlers use. */
export interface FastifyReplyLike {
  /** Sets the HTTP status code. */
  code(statusCode: number): unknown;
  /** Sets a response header. */
  header(name: string, value: string): unknown;
}

/** The part of a Fastify instance {@link HealthRegistry.fastifyPlugin} uses. */
export interface FastifyInstanceLike {
  /** Registers a GET route. */
  get(
    path: string,
    handler: (request: unknown, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
}

/** Paths of {@link HealthRegistry.fastifyPlugin} and {@link HealthRegistry.handler}'s router. */
export interface HealthRoutes {
  /** @default '/healthz' */
  livenessPath?: string;
  /** @default '/readyz' */
  readinessPath?: string;
}

/**
 * Liveness and readiness checks with per-check timeouts, and handlers for node:http, Express and
 * Fastify that answer 200 with the JSON report when the probe is up and 503 when it is down.
 *
 * @example
 * const health = new HealthRegistry();
 * health.register('redis', redisHealthCheck(redis), { timeout: 0.5 });
 * health.register('postgres', postgresHealthCheck(pool));
 * app.get('/readyz', health.expressHandler('readiness'));
 */
export class HealthRegistry {
  private readonly checks = new Map<string, Entry>();
  private readonly timeoutMs: number;
  private readonly metrics: MetricsSink;

  constructor(options: HealthRegistryOptions = {}) {
    assertObject(options, 'options');
    this.timeoutMs = assertSeconds(options.timeout ?? 1, 'timeout') * 1000;
    this.metrics = options.metrics ?? noopMetrics;
  }

  /**
   * Adds a check under `name` (replacing none: a taken name throws). Returns a disposer that
   * removes it.
   */
  register(name: string, check: HealthCheck, options: HealthCheckOptions = {}): Disposer {
    assertString(name, 'name');
    assertFunction(check, 'check');
    assertObject(options, 'options');
    if (this.checks.has(name)) {
      throw new ValidationError(
        `a health check named ${describeValue(name)} is already registered`,
        {
          option: 'name',
        },
      );
    }
    const timeoutMs =
      options.timeout === undefined
        ? this.timeoutMs
        : assertSeconds(options.timeout, 'timeout') * 1000;
    const probes = options.probes ?? ['readiness'];
    if (
      !Array.isArray(probes) ||
      probes.length === 0 ||
      probes.some((p) => p !== 'liveness' && p !== 'readiness')
    ) {
      throw new ValidationError(
        `probes must be a non-empty array of 'liveness' / 'readiness', received ${describeValue(probes)}`,
        { option: 'probes' },
      );
    }
    const entry: Entry = {
      name,
      check,
      timeoutMs,
      probes: new Set(probes),
      critical: options.critical ?? true,
      up: this.metrics.gauge('health_check_up', { check: name }),
      duration: this.metrics.histogram('health_check_duration_seconds', { check: name }),
    };
    this.checks.set(name, entry);
    const dispose = () => {
      if (this.checks.get(name) === entry) this.checks.delete(name);
    };
    return Object.assign(dispose, { dispose });
  }

  /** Removes the check `name`; true when there was one. */
  unregister(name: string): boolean {
    return this.checks.delete(name);
  }

  /** Names of the registered checks. */
  names(): string[] {
    return [...this.checks.keys()];
  }

  /** Runs the liveness checks (none by default: then the process is live if it answers). */
  liveness(): Promise<HealthReport> {
    return this.run('liveness');
  }

  /** Runs the readiness checks, concurrently, each within its timeout. */
  readiness(): Promise<HealthReport> {
    return this.run('readiness');
  }

  /** Runs the checks of `probe`. */
  async run(probe: HealthProbe): Promise<HealthReport> {
    if (probe !== 'liveness' && probe !== 'readiness') {
      throw new ValidationError(
        `probe must be 'liveness' or 'readiness', received ${describeValue(probe)}`,
        {
          option: 'probe',
        },
      );
    }
    const entries = [...this.checks.values()].filter((e) => e.probes.has(probe));
    const results = await Promise.all(entries.map((e) => this.runOne(e)));
    const checks: Record<string, HealthCheckResult> = {};
    let ok = true;
    entries.forEach((e, i) => {
      const r = results[i]!;
      checks[e.name] = r;
      if (r.status === 'down' && e.critical) ok = false;
    });
    return { status: ok ? 'up' : 'down', ok, probe, checks, timestampMs: Date.now() };
  }

  private async runOne(e: Entry): Promise<HealthCheckResult> {
    const start = performance.now();
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), e.timeoutMs);
    });
    let result: HealthCheckResult;
    try {
      const p = Promise.resolve().then(() => e.check(ac.signal));
      // A check that settles after its timeout must not surface as an unhandled rejection.
      p.catch(() => {});
      const r = await Promise.race([p, timeout]);
      const duration = (performance.now() - start) / 1000;
      if (r === 'timeout') {
        ac.abort(new Error(`health check ${e.name} timed out`));
        result = {
          status: 'down',
          critical: e.critical,
          duration,
          error: `timed out after ${e.timeoutMs / 1000}s`,
          timedOut: true,
        };
      } else if (r === false || saysDown(r)) {
        result = {
          status: 'down',
          critical: e.critical,
          duration,
          error: r === false ? 'returned false' : `reported ${describeResult(r)}`,
        };
      } else {
        result = { status: 'up', critical: e.critical, duration };
      }
    } catch (err) {
      result = {
        status: 'down',
        critical: e.critical,
        duration: (performance.now() - start) / 1000,
        error: err instanceof Error ? err.message : String(err),
      };
    } finally {
      clearTimeout(timer);
    }
    e.up.set(result.status === 'up' ? 1 : 0);
    e.duration.observe(result.duration);
    return result;
  }

  /**
   * A `node:http` handler for one probe: 200 + JSON report when up, 503 when down. Works as an
   * Express handler too. Given no probe, it routes by path (`/healthz`, `/readyz`, else 404).
   *
   * @example
   * http.createServer(health.handler()).listen(8080);
   */
  handler(
    probe?: HealthProbe,
    routes: HealthRoutes = {},
  ): (req: IncomingMessage, res: ServerResponse) => void {
    const live = routes.livenessPath ?? '/healthz';
    const ready = routes.readinessPath ?? '/readyz';
    return (req, res) => {
      let p = probe;
      if (p === undefined) {
        const path = (req.url ?? '/').split('?')[0];
        p = path === live ? 'liveness' : path === ready ? 'readiness' : undefined;
        if (p === undefined) {
          res.statusCode = 404;
          res.end();
          return;
        }
      }
      this.run(p).then(
        (report) => send(res, req.method === 'HEAD', report.ok ? 200 : 503, report),
        (err: unknown) =>
          send(res, req.method === 'HEAD', 500, {
            status: 'down',
            error: err instanceof Error ? err.message : String(err),
          }),
      );
    };
  }

  /** An Express handler for one probe (the node:http handler: Express extends its req/res). */
  expressHandler(probe: HealthProbe): (req: IncomingMessage, res: ServerResponse) => void {
    return this.handler(probe);
  }

  /**
   * A Fastify route handler for one probe: 200 + JSON report when up, 503 when down.
   *
   * @example
   * fastify.get('/readyz', health.fastifyHandler('readiness'));
   */
  fastifyHandler(
    probe: HealthProbe,
  ): (request: unknown, reply: FastifyReplyLike) => Promise<HealthReport> {
    return async (_request, reply) => {
      const report = await this.run(probe);
      reply.code(report.ok ? 200 : 503);
      reply.header('cache-control', 'no-store');
      return report;
    };
  }

  /**
   * A Fastify plugin adding `GET /healthz` (liveness) and `GET /readyz` (paths configurable).
   *
   * @example
   * await fastify.register(health.fastifyPlugin());
   */
  fastifyPlugin(routes: HealthRoutes = {}): (fastify: FastifyInstanceLike) => Promise<void> {
    return async (fastify) => {
      fastify.get(routes.livenessPath ?? '/healthz', this.fastifyHandler('liveness'));
      fastify.get(routes.readinessPath ?? '/readyz', this.fastifyHandler('readiness'));
    };
  }
}

const DOWN_WORDS = new Set(['down', 'fail', 'failed', 'error', 'unhealthy']);

function saysDown(r: unknown): boolean {
  if (typeof r !== 'object' || r === null) return false;
  const o = r as { ok?: unknown; healthy?: unknown; status?: unknown };
  return (
    o.ok === false ||
    o.healthy === false ||
    (typeof o.status === 'string' && DOWN_WORDS.has(o.status.toLowerCase()))
  );
}

function describeResult(r: unknown): string {
  try {
    return (JSON.stringify(r) ?? String(r)).slice(0, 200);
  } catch {
    return 'a failing status object';
  }
}

function send(res: ServerResponse, head: boolean, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}

/**
 * A default registry for apps that want one place to register checks. Libraries and tests
 * should construct their own {@link HealthRegistry}.
 */
export const health: HealthRegistry = new HealthRegistry();

/**
 * A readiness check that PINGs Redis (an ioredis `Redis`/`Cluster`, a node-redis client, or
 * anything with `ping()`).
 */
export function redisHealthCheck(client: { ping(): Promise<unknown> }): HealthCheck {
  if (!client || typeof client.ping !== 'function') {
    throw new ValidationError(
      `client must have a ping() method, received ${describeValue(client)}`,
      {
        option: 'client',
      },
    );
  }
  return async () => {
    const r = await client.ping();
    if (typeof r === 'string' && r.toUpperCase() !== 'PONG') {
      throw new Error(`unexpected PING reply ${JSON.stringify(r.slice(0, 40))}`);
    }
  };
}

/**
 * A readiness check that runs `SELECT 1` on a PostgreSQL pool or client (pg `Pool`, `Client`,
 * or anything with `query(sql)`), e.g. the primary pool of a DatabaseRouter.
 */
export function postgresHealthCheck(pool: { query(sql: string): Promise<unknown> }): HealthCheck {
  if (!pool || typeof pool.query !== 'function') {
    throw new ValidationError(`pool must have a query() method, received ${describeValue(pool)}`, {
      option: 'pool',
    });
  }
  return async () => {
    await pool.query('SELECT 1');
  };
}

/**
 * A readiness check that a background worker is running: anything with an `isRunning` getter or
 * method (azscale's `BackgroundWorker`), or a function returning a boolean.
 *
 * @example
 * health.register('worker', workerHealthCheck(worker));
 */
export function workerHealthCheck(
  worker: { readonly isRunning: boolean | (() => boolean) } | (() => boolean),
): HealthCheck {
  if (typeof worker === 'function') return () => worker() === true;
  if (!worker || typeof worker !== 'object' || !('isRunning' in worker)) {
    throw new ValidationError(
      `worker must have an isRunning property or method, received ${describeValue(worker)}`,
      { option: 'worker' },
    );
  }
  return () => {
    const r = typeof worker.isRunning === 'function' ? worker.isRunning() : worker.isRunning;
    return r === true;
  };
}
