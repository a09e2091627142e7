import type { IncomingMessage } from 'node:http';
import type { RedisInput } from '../core/connection.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { validateId, validatePrefix } from '../core/keys.js';
import { assertDuration } from '../core/timers.js';
import { assertObject, assertString } from '../core/validate.js';
import type { Metrics } from '../observability/metrics.js';
import type { CircuitBreaker } from '../resilience/circuit.js';
import type { ConcurrencyLimiter } from '../resilience/limiter.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import type { ScalingAdvisor } from '../scaling/advisor.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import { TaskQueue } from '../worker/queue.js';

/**
 * Decides whether a request may run a dashboard action: `true` (or a promise of it) allows it.
 * It sees the raw Node request (headers, cookies, `req.user` set by your framework).
 */
export type DashboardAuth = (req: IncomingMessage) => boolean | Promise<boolean>;

/** A function guarded by `circuit()`, which carries its breaker. */
export interface CircuitGuardedLike {
  /** The breaker behind the function. */
  readonly breaker: CircuitBreaker;
}

/** Things to show, as a list or as a record of display name -> thing. */
export type Named<T> = readonly T[] | Readonly<Record<string, T>>;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * Where the dashboard lives: the UI at `basePath/`, its JSON API under `basePath/api/`.
   * With Express `app.use('/ops', dash)` the mount path is read from `req.originalUrl`, so it
   * must equal `basePath`.
   * @default '/dashboard'
   */
  basePath?: string;
  /** The page title. @default 'azscale' */
  title?: string;
  /**
   * Task queues to show: {@link TaskQueue} instances (never closed by the dashboard), or queue
   * names, which need `redis` (the dashboard opens those queues and closes them in `close()`).
   * @default []
   */
  queues?: readonly (TaskQueue | string)[];
  /** The fleet's Redis (URL, ioredis client or `{ nodes }`), for `queues` given by name. */
  redis?: RedisInput;
  /** Key prefix of queues given by name. @default 'azs:worker:' */
  queuePrefix?: string;
  /**
   * Circuit breakers to show (and reset). `'registry'` shows every breaker registered in this
   * process (`listCircuitBreakers()`) at each refresh.
   * @default 'registry'
   */
  breakers?: Named<CircuitBreaker | CircuitGuardedLike> | 'registry';
  /** Concurrency limiters to show (slots in use against the limit, callers waiting). @default [] */
  limiters?: Named<ConcurrencyLimiter>;
  /** Rate limiters to show (budget left, pause). @default [] */
  rateLimiters?: Named<RateLimiter>;
  /** The cost optimizer whose hourly spend, budget and last 24 hours are shown. */
  optimizer?: CostOptimizer;
  /**
   * The scaling advisor whose verdict is shown: the latest assessment it made (its `assessed`
   * event). With `metrics` too and no assessment by your code within two refresh intervals, the
   * dashboard assesses `metrics.snapshot()` itself.
   */
  advisor?: ScalingAdvisor;
  /** The metrics registry: p95 latency and request rate (and the advisor's input). */
  metrics?: Metrics;
  /**
   * Allow actions (retry/redrive, cancel, pause/resume, clean, breaker reset). Every action also
   * needs `auth` to allow the request.
   * @default true
   */
  readOnly?: boolean;
  /**
   * Who may run actions: a function of the request, or a bearer token the request must send as
   * `Authorization: Bearer <token>` (the page asks for it once). Without it no action runs, even
   * with `readOnly: false`. Reads are not guarded: mount the dashboard behind your own
   * authentication if its figures are private.
   */
  auth?: DashboardAuth | string;
  /**
   * Seconds between refreshes of the page, and how long one snapshot of the fleet is reused:
   * any number of open pages cost the backends one read per interval. 0.5..3600.
   * @default 3
   */
  refreshInterval?: number;
  /**
   * Seconds between samples of queue depth and throughput for the last-hour charts (kept in
   * this process, one hour's worth). 1..600.
   * @default 10
   */
  sampleInterval?: number;
}

/** A display name with the thing behind it. */
export interface Entry<T> {
  name: string;
  value: T;
}

/** Options after validation. */
export interface ResolvedOptions {
  basePath: string;
  title: string;
  queues: TaskQueue[];
  ownedQueues: TaskQueue[];
  breakers: Entry<CircuitBreaker>[] | 'registry';
  limiters: Entry<ConcurrencyLimiter>[];
  rateLimiters: Entry<RateLimiter>[];
  optimizer: CostOptimizer | undefined;
  advisor: ScalingAdvisor | undefined;
  metrics: Metrics | undefined;
  readOnly: boolean;
  auth: DashboardAuth | string | undefined;
  refreshMs: number;
  sampleMs: number;
}

const MAX_TITLE = 200;
const MAX_TOKEN = 4096;

function entries<T>(
  value: unknown,
  option: string,
  check: (v: unknown, where: string) => T,
  nameOf: (v: T) => string,
): Entry<T>[] {
  if (value === undefined) return [];
  const out: Entry<T>[] = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      const t = check(v, `${option}[${i}]`);
      out.push({ name: nameOf(t), value: t });
    });
  } else {
    // Own enumerable keys only: a record literal's `__proto__` key is not a display name.
    for (const [k, v] of Object.entries(assertObject(value, option) ?? {})) {
      out.push({ name: validateId(k, `${option} key`, 200), value: check(v, `${option}.${k}`) });
    }
  }
  const seen = new Set<string>();
  for (const e of out) {
    if (seen.has(e.name)) {
      throw new ValidationError(`${option} holds two entries named ${JSON.stringify(e.name)}`, {
        option,
      });
    }
    seen.add(e.name);
  }
  return out;
}

function hasMethods(v: unknown, where: string, methods: readonly string[]): void {
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || methods.some((m) => typeof o[m] !== 'function')) {
    throw new ValidationError(
      `${where} must be an object with ${methods.join(', ')}(), received ${describeValue(v)}`,
      { option: where },
    );
  }
}

/** Validates the options at the public edge; opens the queues given by name. */
export function resolveOptions(options: DashboardOptions): ResolvedOptions {
  const o = (assertObject(options ?? {}, 'options') ?? {}) as DashboardOptions;
  const basePath = normalizeBasePath(o.basePath ?? '/dashboard');
  const title = assertString(o.title ?? 'azscale', 'title');
  if (title.length > MAX_TITLE) {
    throw new ValidationError(`title is longer than ${MAX_TITLE} characters`, { option: 'title' });
  }
  if (o.readOnly !== undefined && typeof o.readOnly !== 'boolean') {
    throw new ValidationError(`readOnly must be a boolean, received ${describeValue(o.readOnly)}`, {
      option: 'readOnly',
    });
  }
  if (o.auth !== undefined && typeof o.auth !== 'function') {
    const token = assertString(o.auth, 'auth');
    if (token.length > MAX_TOKEN || /[^\x21-\x7e]/.test(token)) {
      throw new ValidationError(
        `auth must be a function or a bearer token of printable ASCII (at most ${MAX_TOKEN} characters)`,
        { option: 'auth' },
      );
    }
  }
  const refreshMs = assertDuration(o.refreshInterval ?? 3, 'refreshInterval', { max: 3600 }) * 1000;
  if (refreshMs < 500) {
    throw new ValidationError('refreshInterval must be at least 0.5 seconds', {
      option: 'refreshInterval',
    });
  }
  const sampleMs = assertDuration(o.sampleInterval ?? 10, 'sampleInterval', { max: 600 }) * 1000;
  if (sampleMs < 1000) {
    throw new ValidationError('sampleInterval must be at least 1 second', {
      option: 'sampleInterval',
    });
  }

  const breakers =
    o.breakers === undefined || o.breakers === 'registry'
      ? ('registry' as const)
      : entries(
          o.breakers,
          'breakers',
          (v, where) => {
            const b = (v as { breaker?: unknown })?.breaker ?? v;
            hasMethods(b, where, ['reset', 'toJSON']);
            return b as CircuitBreaker;
          },
          (b) => b.name,
        );
  const limiters = entries(
    o.limiters,
    'limiters',
    (v, where) => {
      hasMethods(v, where, ['inFlight', 'run']);
      return v as ConcurrencyLimiter;
    },
    (l) => l.key,
  );
  const rateLimiters = entries(
    o.rateLimiters,
    'rateLimiters',
    (v, where) => {
      hasMethods(v, where, ['budget', 'tryAcquire']);
      return v as RateLimiter;
    },
    (r) => r.key,
  );
  if (o.optimizer !== undefined) hasMethods(o.optimizer, 'optimizer', ['hourlySpend']);
  if (o.advisor !== undefined) hasMethods(o.advisor, 'advisor', ['assess', 'on']);
  if (o.metrics !== undefined) hasMethods(o.metrics, 'metrics', ['snapshot']);

  const queueList = o.queues ?? [];
  if (!Array.isArray(queueList)) {
    throw new ValidationError(`queues must be an array, received ${describeValue(queueList)}`, {
      option: 'queues',
    });
  }
  const named = queueList.filter((q): q is string => typeof q === 'string');
  if (named.length > 0 && (o.redis === undefined || o.redis === null)) {
    throw new ValidationError('queues given by name need redis (the fleet’s Redis)', {
      option: 'redis',
    });
  }
  const prefix = validatePrefix(o.queuePrefix ?? 'azs:worker:', 'queuePrefix');
  const queues: TaskQueue[] = [];
  const ownedQueues: TaskQueue[] = [];
  queueList.forEach((q, i) => {
    if (typeof q === 'string') {
      const tq = new TaskQueue({
        name: validateId(q, `queues[${i}]`, 200),
        redis: o.redis,
        prefix,
      });
      queues.push(tq);
      ownedQueues.push(tq);
    } else {
      hasMethods(q, `queues[${i}]`, ['stats', 'getTask', 'redrive']);
      queues.push(q);
    }
  });
  const names = new Set<string>();
  for (const q of queues) {
    if (names.has(q.name)) {
      for (const owned of ownedQueues) void owned.close();
      throw new ValidationError(`queues holds two queues named ${JSON.stringify(q.name)}`, {
        option: 'queues',
      });
    }
    names.add(q.name);
  }

  return {
    basePath,
    title,
    queues,
    ownedQueues,
    breakers,
    limiters,
    rateLimiters,
    optimizer: o.optimizer,
    advisor: o.advisor,
    metrics: o.metrics,
    readOnly: o.readOnly ?? true,
    auth: o.auth,
    refreshMs,
    sampleMs,
  };
}

/** `/dashboard/` and `dashboard` become `/dashboard`; `/` stays `` (mounted at the root). */
function normalizeBasePath(value: unknown): string {
  const p = assertString(value, 'basePath', false);
  if (p.length > 200 || !/^\/?[A-Za-z0-9._~\-/]*$/.test(p) || /(^|\/)\.\.?(\/|$)/.test(p)) {
    throw new ValidationError(
      `basePath must be a URL path of letters, digits and ._~-/ (no . or .. segments), received ${describeValue(p)}`,
      { option: 'basePath' },
    );
  }
  const trimmed = `/${p}`.replace(/\/+/g, '/').replace(/\/$/, '');
  return trimmed;
}
