import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { sanitizeError, toBackendError } from './backend-errors.js';
import { AzscaleError, BackendUnavailableError } from './errors.js';
import { annotateActiveSpan, isTracingEnabled } from './trace.js';
import type { SpanAttributes } from './trace.js';
import { redisSpanAttributes } from '../observability/semconv.js';
import {
  CONNECTION_DEFAULTS,
  DEFAULT_CONNECTION_NAME,
  type RedisConnectionOptions,
  validateConnectionOptions,
} from './connection-options.js';
import { isAuthError, isRedisConnectionError } from './redis-errors.js';
import {
  type RedisClient,
  type RedisClusterInput,
  type RedisInput,
  type RedisSentinelInput,
  type Target,
  resolveTarget,
} from './redis-input.js';

/**
 * Turns whatever a user passes as `redis` into a connection with production defaults and clear
 * ownership. ioredis is imported lazily, on the first call that needs a server: importing a
 * module that merely *can* use Redis never loads it, and embedded use never does. The input
 * forms live in redis-input.ts, the options in connection-options.ts, error classification in
 * redis-errors.ts; all are exported from here too (the 0.1.0 import path).
 */
export {
  type IoredisClientLike,
  type RedisClient,
  type RedisClusterInput,
  type RedisInput,
  type RedisSentinelInput,
  describeClient,
  isRedisClient,
  parseClusterNodes,
} from './redis-input.js';
export {
  DEFAULT_CONNECTION_NAME,
  MAX_TIMEOUT_SECONDS,
  type RedisConnectionOptions,
  validateConnectionOptions,
} from './connection-options.js';
export { isRedisConnectionError } from './redis-errors.js';

type IoredisModule = typeof import('ioredis');

let ioredisPromise: Promise<IoredisModule> | undefined;
function loadIoredis(): Promise<IoredisModule> {
  if (!ioredisPromise) ioredisPromise = import('ioredis') as unknown as Promise<IoredisModule>;
  return ioredisPromise;
}

/** Semantic-convention span attributes of a target; a Cluster has no single address. */
function redisTargetAttributes(t: Target): SpanAttributes {
  if (t.kind === 'url' && t.url) {
    return redisSpanAttributes({ host: t.url.hostname, port: Number(t.url.port || 6379) });
  }
  if (t.kind === 'client' && t.client && !('isCluster' in t.client && t.client.isCluster)) {
    const o = (t.client as Redis).options as RedisOptions | undefined;
    return redisSpanAttributes({ host: o?.host ?? 'localhost', port: o?.port ?? 6379 });
  }
  return redisSpanAttributes();
}

/**
 * One Redis connection as a primitive sees it: lazily created, ready-checked, with ownership.
 * A client we created is closed by {@link RedisConnection.close}; one the user passed in never is.
 */
export class RedisConnection {
  /** True when we created the client and so must close it. */
  readonly owned: boolean;
  /** Host/port description for messages and events; never contains a password. */
  readonly description: string;
  /** The client once it has been created (standalone or Cluster). */
  client: RedisClient | undefined;

  private readonly target: Target;
  private readonly opts: Required<Omit<RedisConnectionOptions, 'connectionName'>> &
    Pick<RedisConnectionOptions, 'connectionName'>;
  private creating: Promise<RedisClient> | undefined;
  private lastError: Error | undefined;
  private waiting: Promise<void> | undefined;
  private readonly extra: RedisClient[] = [];
  private closed = false;
  private spanAttrs: SpanAttributes | undefined;

  constructor(input: RedisInput, options: RedisConnectionOptions = {}, option = 'redis') {
    this.target = resolveTarget(input, option);
    this.owned = this.target.kind !== 'client';
    this.description = this.target.description;
    const o = { ...CONNECTION_DEFAULTS, ...stripUndefined(options) };
    validateConnectionOptions(o);
    this.opts = o;
    if (this.target.client) {
      this.client = this.target.client;
      this.watch(this.client);
    }
  }

  /** True for a Redis Cluster. */
  get isCluster(): boolean {
    if (this.target.kind === 'cluster') return true;
    const c = this.client ?? this.target.client;
    return !!c && 'isCluster' in c && (c as Cluster).isCluster === true;
  }

  /**
   * The client, connected and ready. Fails with {@link BackendUnavailableError} within
   * `connectTimeout` seconds, and at once when the server is known to be down.
   */
  get(): Promise<RedisClient> {
    // Every Redis operation gets its client here: label the azscale span it runs in.
    if (isTracingEnabled())
      annotateActiveSpan((this.spanAttrs ??= redisTargetAttributes(this.target)));
    const c = this.client;
    if (c && c.status === 'ready') return Promise.resolve(c);
    return this.slowGet();
  }

  private async slowGet(): Promise<RedisClient> {
    if (this.closed) throw this.closedError();
    if (!this.client) {
      this.creating ??= this.create(this.opts).then((c) => {
        this.client = c;
        this.watch(c);
        return c;
      });
      await this.creating;
    }
    const client = this.client as RedisClient;
    if (client.status === 'ready') return client;
    if (client.status === 'end' || client.status === 'close') {
      if (!this.owned) throw this.unavailable('the client passed in is closed', this.lastError);
      // An owned client that gave up is reconnected; ioredis keeps its options.
    }
    if ((client.status === 'reconnecting' || client.status === 'connecting') && this.lastError) {
      // Known down: fail now rather than make every caller wait out the connect timeout.
      throw this.unavailable('is not reachable', this.lastError);
    }
    // One shared wait per attempt: concurrent callers must not each add listeners to the client.
    if (!this.waiting) {
      this.waiting = this.waitReady(client).finally(() => {
        this.waiting = undefined;
      });
    }
    await this.waiting;
    return client;
  }

  /**
   * A new, separate connection to the same server(s) (for subscribers or blocking reads), owned
   * and closed by this object. `overrides` adjust the defaults for it.
   *
   * A connection that does not become ready within `connectTimeout` is disconnected before the
   * error is thrown: a caller that retries during an outage never piles up clients that keep
   * reconnecting in the background (and all connect at once when the server returns). Give a
   * duplicate you no longer need back with {@link RedisConnection.release}.
   */
  async duplicate(overrides: RedisConnectionOptions = {}): Promise<RedisClient> {
    if (this.closed) throw this.closedError();
    const opts = { ...this.opts, ...stripUndefined(overrides) };
    let c: RedisClient;
    if (this.target.kind === 'client') {
      const base = this.target.client as RedisClient;
      c = (base as Redis).duplicate();
    } else {
      c = await this.create(opts);
    }
    this.extra.push(c);
    c.on('error', () => {});
    try {
      await this.waitReady(c, opts.connectTimeout);
    } catch (e) {
      this.forget(c);
      c.disconnect();
      throw e;
    }
    if (this.closed) {
      // close() ran while we waited: it may have missed this client.
      this.forget(c);
      c.disconnect();
      throw this.closedError();
    }
    return c;
  }

  /**
   * Closes a connection made by {@link RedisConnection.duplicate} and forgets it. Idempotent; a
   * client this object did not create is left alone.
   */
  async release(client: RedisClient): Promise<void> {
    if (!this.forget(client)) return;
    await quitQuietly(client);
  }

  /** Connections this object holds open or is (re)connecting: the main client plus duplicates. */
  get connectionCount(): number {
    const main = this.client && this.client.status !== 'end' ? 1 : 0;
    return main + this.extra.filter((c) => c.status !== 'end').length;
  }

  private forget(c: RedisClient): boolean {
    const i = this.extra.indexOf(c);
    if (i < 0) return false;
    this.extra.splice(i, 1);
    return true;
  }

  /**
   * Maps an ioredis error to ours (see {@link toBackendError}): connection failures and
   * READONLY/OOM/LOADING/MASTERDOWN/CLUSTERDOWN replies become {@link BackendUnavailableError},
   * other reply errors a `BackendError`; message, context and cause never hold the command's
   * arguments, the values written or the password.
   */
  mapError(e: unknown, operation: string): AzscaleError {
    if (e instanceof AzscaleError) return e;
    const mapped = toBackendError(e, {
      op: operation,
      backend: 'redis',
      target: this.description,
      secrets: this.target.secrets,
    });
    if (isAuthError(e)) mapped.context.auth = true;
    return mapped;
  }

  /** Runs `fn` with the ready client; connection errors become {@link BackendUnavailableError}. */
  async run<T>(operation: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.get());
    } catch (e) {
      throw this.mapError(e, operation);
    }
  }

  /** Closes what we created; leaves a user-supplied client open. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const toClose: RedisClient[] = [...this.extra];
    if (this.owned) {
      if (this.creating) await this.creating.catch(() => undefined);
      if (this.client) toClose.push(this.client);
    }
    await Promise.all(toClose.map((c) => quitQuietly(c)));
  }

  /** True once {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  private closedError(): AzscaleError {
    return new BackendUnavailableError(`Redis connection (${this.description}) is closed`, {
      context: { backend: 'redis', target: this.description, closed: true },
    });
  }

  private watch(c: RedisClient): void {
    c.on('error', (e: Error) => {
      this.lastError = e;
    });
    c.on('ready', () => {
      this.lastError = undefined;
    });
  }

  /** Builds a BackendUnavailableError whose message, context and cause hold no password. */
  unavailable(what: string, cause?: Error): BackendUnavailableError {
    const safeCause = cause ? this.sanitize(cause) : undefined;
    const reason = safeCause ? `: ${safeCause.message}` : '';
    return new BackendUnavailableError(`Redis (${this.description}) ${what}${reason}`, {
      cause: safeCause,
      context: {
        backend: 'redis',
        target: this.description,
        ...(cause && isAuthError(cause) ? { auth: true } : {}),
      },
    });
  }

  private sanitize(e: Error): Error {
    // ioredis attaches the failed command (AUTH <password>) to reply errors; keep only safe fields.
    return sanitizeError(e, { secrets: this.target.secrets });
  }

  private waitReady(c: RedisClient, timeoutSeconds = this.opts.connectTimeout): Promise<void> {
    if (c.status === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        c.off('ready', onReady);
        c.off('error', onError);
        c.off('end', onEnd);
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onError = (e: Error) => {
        // Refused, unresolvable or unreachable: fail now rather than wait out the timeout.
        if (isAuthError(e)) {
          cleanup();
          reject(this.unavailable('refused authentication', e));
        } else if (isRedisConnectionError(e)) {
          cleanup();
          reject(this.unavailable('is not reachable', e));
        }
      };
      const onEnd = () => {
        cleanup();
        reject(this.unavailable('closed the connection', this.lastError));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.unavailable(`did not become ready within ${timeoutSeconds} s`, this.lastError));
      }, timeoutSeconds * 1000);
      c.on('ready', onReady);
      c.on('error', onError);
      c.on('end', onEnd);
      // 'end': an owned client ioredis gave up on (a Sentinel client whose master lookup was cut
      // short ends instead of retrying); connect() starts it again with the same options.
      if (c.status === 'wait' || (c.status === 'end' && this.owned && !this.closed)) {
        (c as Redis).connect().catch(() => undefined);
      }
    });
  }

  private async create(opts: typeof this.opts): Promise<RedisClient> {
    const mod = await loadIoredis();
    const RedisCtor = (mod.Redis ??
      (mod as unknown as { default: typeof Redis }).default) as typeof Redis;
    const ClusterCtor = (mod.Cluster ??
      (RedisCtor as unknown as { Cluster: typeof Cluster }).Cluster) as typeof Cluster;
    const common: RedisOptions = {
      connectTimeout: opts.connectTimeout * 1000,
      maxRetriesPerRequest: opts.maxRetriesPerRequest,
      ...(opts.commandTimeout > 0 ? { commandTimeout: opts.commandTimeout * 1000 } : {}),
      // Keep reconnecting in the background (so service resumes when Redis returns) with a
      // capped backoff; callers meanwhile fail fast instead of queueing.
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
      lazyConnect: true,
      connectionName: opts.connectionName ?? DEFAULT_CONNECTION_NAME,
    };
    // A primary demoted by a failover keeps its client connections and answers writes with
    // READONLY for ever; reconnecting makes a Sentinel client ask for the new primary (and a DNS
    // endpoint that moved, as on ElastiCache, resolve again). The failed command is not re-sent.
    const standalone: RedisOptions = {
      reconnectOnError: (e: Error) => e.message.startsWith('READONLY'),
    };
    if (this.target.kind === 'url') {
      const url = this.target.url as URL;
      const c = new RedisCtor(url.toString(), {
        ...common,
        ...standalone,
        enableOfflineQueue: opts.offlineQueue,
      });
      c.on('error', () => {});
      return c;
    }
    if (this.target.kind === 'sentinel') {
      const si = this.target.sentinel as RedisSentinelInput;
      const c = new RedisCtor({
        ...common,
        ...standalone,
        enableOfflineQueue: opts.offlineQueue,
        sentinels: si.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: si.name,
        role: si.role === 'replica' || si.role === 'slave' ? 'slave' : 'master',
        // No failoverDetector: its disconnect on +switch-master can cut a master lookup short,
        // and ioredis then ends the client for good (seen under load). A killed primary breaks
        // the socket anyway, and a demoted one answers READONLY, which reconnects (above).
        // A sentinel that does not answer is skipped quickly; the next one is asked.
        sentinelCommandTimeout: Math.max(500, Math.min(opts.connectTimeout * 1000, 5000)),
        ...(si.password ? { password: si.password } : {}),
        ...(si.username ? { username: si.username } : {}),
        ...(si.sentinelPassword ? { sentinelPassword: si.sentinelPassword } : {}),
        ...(si.sentinelUsername ? { sentinelUsername: si.sentinelUsername } : {}),
        ...(si.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        ...(si.db !== undefined ? { db: si.db } : {}),
        ...si.options,
      });
      c.on('error', () => {});
      return c;
    }
    const ci = this.target.cluster as RedisClusterInput;
    const c = new ClusterCtor(
      ci.nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        // Node connections inside a cluster keep ioredis's own queueing (they connect lazily, so
        // the first command to a node must be allowed to wait); the cluster-level queue is bounded.
        enableOfflineQueue: opts.offlineQueue,
        lazyConnect: true,
        slotsRefreshTimeout: Math.max(1000, opts.connectTimeout * 1000),
        clusterRetryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
        redisOptions: {
          ...common,
          ...(ci.password ? { password: ci.password } : {}),
          ...(ci.username ? { username: ci.username } : {}),
          ...(ci.tls ? { tls: {} } : {}),
        },
        ...ci.options,
      },
    );
    c.on('error', () => {});
    return c;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o))
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

async function quitQuietly(c: RedisClient): Promise<void> {
  if (c.status === 'end') return;
  // Resolve once the socket is really gone, so a caller that awaited close() sees status 'end'.
  const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      c.disconnect();
      resolve();
    }, 1000);
  });
  if (c.status === 'ready') c.quit().catch(() => c.disconnect());
  else c.disconnect();
  await Promise.race([ended, deadline]);
  if (timer) clearTimeout(timer);
}

/**
 * True when `v` is a {@link RedisConnection} (by shape, so that a copy of azscale loaded both as
 * ESM and CJS is recognised).
 */
export function isRedisConnection(v: unknown): v is RedisConnection {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as RedisConnection).run === 'function' &&
    typeof (v as RedisConnection).mapError === 'function' &&
    typeof (v as RedisConnection).duplicate === 'function' &&
    typeof (v as RedisConnection).owned === 'boolean'
  );
}

/**
 * Resolves a `redis` option: `undefined` (or `null`) gives `undefined` (embedded), anything else a
 * {@link RedisConnection}. Throws {@link ValidationError} for input that is none of the accepted
 * forms.
 */
export function resolveRedis(
  input: RedisInput | undefined | null,
  options: RedisConnectionOptions = {},
  option = 'redis',
): RedisConnection | undefined {
  if (input === undefined || input === null) return undefined;
  return new RedisConnection(input, options, option);
}
