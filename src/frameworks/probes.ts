import { ValidationError, describeValue } from '../core/errors.js';
import type { HealthRegistry, HealthReport } from '../observability/health.js';

/** Paths and the startup rule of the health routes every framework adapter registers. */
export interface HealthRoutesOptions {
  /** The checks. */
  health: HealthRegistry;
  /** Liveness path. @default '/healthz' */
  livenessPath?: string;
  /** Readiness path. @default '/readyz' */
  readinessPath?: string;
  /** Startup-probe path. @default '/startupz' */
  startupPath?: string;
  /**
   * When the app counts as started: the startup probe answers 503 until this resolves true
   * once, then 200 for good (Kubernetes stops asking after the first success). By default the
   * first passing readiness probe marks the start.
   * @default undefined (first successful readiness)
   */
  started?: () => boolean | Promise<boolean>;
}

/** Resolved health routes: paths and the probe runner the adapters call. */
export interface Probes {
  liveness: string;
  readiness: string;
  startup: string;
  /** Runs the probe of a path; `undefined` for a path that is none of them. */
  run(path: string): Promise<{ status: number; body: unknown }> | undefined;
}

function path(v: unknown, option: string, fallback: string): string {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !v.startsWith('/') || v.length > 200) {
    throw new ValidationError(
      `${option} must be a path starting with "/", received ${describeValue(v)}`,
      {
        option,
      },
    );
  }
  return v;
}

/** Validates the options and builds the probe runner. */
export function makeProbes(o: HealthRoutesOptions): Probes {
  if (typeof o !== 'object' || o === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(o)}`, {
      option: 'options',
    });
  }
  const health = o.health;
  if (typeof health !== 'object' || health === null || typeof health.run !== 'function') {
    throw new ValidationError(
      `health must be a HealthRegistry, received ${describeValue(health)}`,
      {
        option: 'health',
      },
    );
  }
  if (o.started !== undefined && typeof o.started !== 'function') {
    throw new ValidationError(`started must be a function, received ${describeValue(o.started)}`, {
      option: 'started',
    });
  }
  const liveness = path(o.livenessPath, 'livenessPath', '/healthz');
  const readiness = path(o.readinessPath, 'readinessPath', '/readyz');
  const startup = path(o.startupPath, 'startupPath', '/startupz');
  let hasStarted = false;
  const fromReport = (r: HealthReport) => ({ status: r.ok ? 200 : 503, body: r });
  const runStartup = async (): Promise<{ status: number; body: unknown }> => {
    if (!hasStarted) {
      if (o.started) {
        hasStarted = (await o.started()) === true;
      } else {
        const r = await health.run('readiness');
        hasStarted = r.ok;
        if (!hasStarted) return { status: 503, body: { ...r, probe: 'startup' } };
      }
    }
    return {
      status: hasStarted ? 200 : 503,
      body: { status: hasStarted ? 'up' : 'down', ok: hasStarted, probe: 'startup' },
    };
  };
  return {
    liveness,
    readiness,
    startup,
    run(p) {
      if (p === liveness) return health.run('liveness').then(fromReport);
      if (p === readiness) return health.run('readiness').then(fromReport);
      if (p === startup) return runStartup();
      return undefined;
    },
  };
}
