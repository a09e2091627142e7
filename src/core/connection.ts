import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { sanitizeError, toBackendError } from './backend-errors.js';
import { AzscaleError, BackendUnavailableError, ValidationError, describeValue } from './errors.js';
import { MAX_TIMER_MS, assertDuration } from './timers.js';
import { assertNumber } from './validate.js';
import { annotateActiveSpan, isTracingEnabled } from './trace.js';
import type { SpanAttributes } from './trace.js';
import { redisSpanAttributes } from '../observability/semconv.js';

/**
 * Turns whatever a user passes as `redis` into a connection with production defaults and clear
 * ownership. ioredis is imported lazily, on the first call that needs a server: importing a
 * module that merely *can* use Redis never loads it, and embedded use never does.
 */

/** An ioredis client: standalone or Cluster. */
export type RedisClient = Redis | Cluster;

/** A Redis Cluster given by its seed nodes, as in the seed (`startup_nodes`). */
export interface RedisClusterInput {
  /** Seed nodes; the client discovers the rest. */
  nodes: ReadonlyArray<{
    /** Host name or IP address. */
    host: string;
    /** TCP port. */
    port: number;
  }>;
  /** Password (AUTH) for every node. */
  password?: string;
  /** ACL user name for every node. */
  username?: string;
  /** Connect with TLS. @default false */
  tls?: boolean;
  /** Extra ioredis Cluster options, applied over our defaults. */
  options?: ClusterOptions;
}

/**
 * A Redis primary found through Redis Sentinel (ioredis's own Sentinel support): the client asks
 * the sentinels where the primary named `name` is, checks its role on every (re)connect, and
 * follows a failover to the promoted replica. Connections made for subscribers and blocking
 * reads follow it too.
 *
 * @example
 * new TaskQueue({ redis: { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster' } })
 */
export interface RedisSentinelInput {
  /** Sentinels to ask (at least one; the client learns the others from them). */
  sentinels: ReadonlyArray<{
    /** Host name or IP address. */
    host: string;
    /** TCP port (Sentinel's default is 26379). */
    port: number;
  }>;
  /** The primary's name in the sentinels' configuration (`sentinel monitor <name> ...`). */
  name: string;
  /** Password (AUTH) of the Redis primary and replicas. */
  password?: string;
  /** ACL user name of the Redis primary and replicas. */
  username?: string;
  /** Password (AUTH) of the sentinels themselves, when they have `requirepass`. */
  sentinelPassword?: string;
  /** ACL user name of the sentinels. */
  sentinelUsername?: string;
  /**
   * Which node to connect to: the primary, or a replica (read-only; `'slave'` is accepted as
   * ioredis spells it).
   * @default 'master'
   */
  role?: 'master' | 'replica' | 'slave';
  /** Connect to Redis (and the sentinels) with TLS. @default false */
  tls?: boolean;
  /** Database index. @default 0 */
  db?: number;
  /** Extra ioredis options, applied over our defaults (e.g. `natMap`, `preferredSlaves`). */
  options?: RedisOptions;
}

/**
 * An ioredis `Redis` or `Cluster` of another major than the one azscale depends on (ioredis 5
 * when azscale has 6): its types differ in commands azscale does not use, so it is accepted by
 * shape and driven through the commands both majors have (tested with both).
 */
export interface IoredisClientLike {
  /** ioredis's connection status, e.g. `ready`. */
  readonly status: string;
  /** Starts a pipeline. */
  pipeline(): unknown;
  /** Subscribes to a client event. */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Closes the connection gracefully. */
  quit(): Promise<unknown>;
}

/**
 * What a `redis` option accepts: a `redis://` or `rediss://` URL (password allowed), an ioredis
 * `Redis` or `Cluster` you own (ioredis 5 or 6), `{ nodes: [{ host, port }] }` for a Cluster we
 * create, or `{ sentinels: [{ host, port }], name }` for a primary found through Redis Sentinel.
 * `undefined` means embedded (no Redis).
 */
export type RedisInput =
  | string
  | Redis
  | Cluster
  | IoredisClientLike
  | RedisClusterInput
  | RedisSentinelInput;

/** Connection defaults, all overridable. */
export interface RedisConnectionOptions {
  /**
   * Seconds to wait for a connection (TCP + AUTH + ready check) before failing with
   * {@link BackendUnavailableError}. At most {@link MAX_TIMEOUT_SECONDS}.
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Seconds a single command may take before it fails (protects against a hung server).
   * `0` disables the limit (only for blocking commands on a dedicated connection). At most
   * {@link MAX_TIMEOUT_SECONDS}.
   * @default 5
   */
  commandTimeout?: number;
  /**
   * How many reconnections a command may wait through before it fails.
   * @default 1
   */
  maxRetriesPerRequest?: number;
  /**
   * Queue commands while disconnected instead of failing them at once. Off by default so that a
   * dead Redis fails calls fast instead of growing an unbounded in-memory queue.
   * @default false
   */
  offlineQueue?: boolean;
  /**
   * Connection name shown by `CLIENT LIST` (set on every connection we create, Cluster nodes
   * included), so operators can count a service's connections.
   * @default 'azscale'
   */
  connectionName?: string;
}

/** Largest `connectTimeout`/`commandTimeout` (seconds): what one Node timer holds (~24.8 days). */
export const MAX_TIMEOUT_SECONDS = Math.floor(MAX_TIMER_MS / 1000);

/** The `CLIENT SETNAME` of connections we create when no `connectionName` is given. */
export const DEFAULT_CONNECTION_NAME = 'azscale';

const DEFAULTS = {
  connectTimeout: 5,
  commandTimeout: 5,
  maxRetriesPerRequest: 1,
  offlineQueue: false,
};

// Messages (lower-cased) and error codes that mean "the server is not there for us", as opposed
// to a reply error about the command itself.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
const CONNECTION_MESSAGES = [
  'connection is closed',
  "stream isn't writeable",
  'command timed out',
  'reached the max retries per request',
  'failed to refresh slots cache',
  'none of startup nodes is available',
  'clusterdown',
  'noauth',
  'wrongpass',
  'invalid password',
  'invalid username-password',
  'loading',
  'masterdown',
  'connect etimedout',
  "cluster isn't ready",
  'connection in subscriber mode',
];
const AUTH_MESSAGES = ['noauth', 'wrongpass', 'invalid password', 'invalid username-password'];

/**
 * Checks connection options as {@link RedisConnection} will use them: timeouts in seconds within
 * what one Node timer holds, a non-negative retry count, a `CLIENT SETNAME`-safe name.
 * @throws ValidationError naming the option.
 */
export function validateConnectionOptions(o: RedisConnectionOptions): void {
  // ioredis arms one Node timer per timeout: past 2^31-1 ms it would fire after 1 ms.
  if (o.connectTimeout !== undefined)
    assertDuration(o.connectTimeout, 'connectTimeout', { max: MAX_TIMEOUT_SECONDS });
  if (o.commandTimeout !== undefined)
    assertDuration(o.commandTimeout, 'commandTimeout', {
      max: MAX_TIMEOUT_SECONDS,
      allowZero: true,
    });
  if (o.maxRetriesPerRequest !== undefined)
    assertNumber(o.maxRetriesPerRequest, 'maxRetriesPerRequest', { integer: true, min: 0 });
  if (o.offlineQueue !== undefined && typeof o.offlineQueue !== 'boolean') {
    throw new ValidationError(
      `offlineQueue must be a boolean, received ${describeValue(o.offlineQueue)}`,
      { option: 'offlineQueue' },
    );
  }
  if (
    o.connectionName !== undefined &&
    (typeof o.connectionName !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(o.connectionName))
  ) {
    // CLIENT SETNAME refuses spaces and newlines; fail here, not on every reconnect.
    throw new ValidationError(
      `connectionName must be 1-128 printable characters without spaces, received ${describeValue(o.connectionName)}`,
      { option: 'connectionName' },
    );
  }
}

/** True when `e` means the Redis server could not be reached or refused the connection. */
export function isRedisConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  const msg = e.message.toLowerCase();
  return CONNECTION_MESSAGES.some((m) => msg.startsWith(m) || msg.includes(m));
}

function isAuthError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const msg = e.message.toLowerCase();
  return AUTH_MESSAGES.some((m) => msg.includes(m));
}

function isClusterInput(v: unknown): v is RedisClusterInput {
  return typeof v === 'object' && v !== null && Array.isArray((v as RedisClusterInput).nodes);
}

/** True when `v` looks like an ioredis `Redis` or `Cluster` instance. */
export function isRedisClient(v: unknown): v is RedisClient {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Redis).pipeline === 'function' &&
    typeof (v as Redis).status === 'string' &&
    typeof (v as Redis).on === 'function'
  );
}

/** Parses `REDIS_CLUSTER_NODES`-style text: `host:port,host:port`. */
export function parseClusterNodes(text: string): {
  /** Host name or IP address. */
  host: string;
  /** TCP port. */
  port: number;
}[] {
  const nodes = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((part) => {
      const i = part.lastIndexOf(':');
      const host = i > 0 ? part.slice(0, i) : part;
      const port = i > 0 ? Number(part.slice(i + 1)) : 6379;
      if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
        throw new ValidationError(`cluster node ${JSON.stringify(part)} is not host:port`, {
          option: 'redis.nodes',
        });
      }
      return { host: host.replace(/^\[|\]$/g, ''), port };
    });
  if (nodes.length === 0) {
    throw new ValidationError('cluster node list is empty', { option: 'redis.nodes' });
  }
  return nodes;
}

interface Target {
  kind: 'url' | 'cluster' | 'client' | 'sentinel';
  url?: URL;
  cluster?: RedisClusterInput;
  sentinel?: RedisSentinelInput;
  client?: RedisClient;
  description: string;
  secrets: string[];
}

function resolveTarget(input: RedisInput, option: string): Target {
  if (typeof input === 'string') {
    let url: URL;
    try {
      url = new URL(input);
    } catch {
      throw new ValidationError(`${option} is not a valid Redis URL`, { option });
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new ValidationError(
        `${option} must use redis:// or rediss://, received ${url.protocol}//`,
        { option },
      );
    }
    const secrets = url.password ? [decodeURIComponent(url.password), url.password] : [];
    return {
      kind: 'url',
      url,
      description: `${url.protocol}//${url.hostname}:${url.port || '6379'}${url.pathname.length > 1 ? url.pathname : ''}`,
      secrets,
    };
  }
  if (isRedisClient(input)) {
    const { description, secrets } = describeClient(input);
    return { kind: 'client', client: input, description, secrets };
  }
  if (isSentinelInput(input)) {
    if (isClusterInput(input)) {
      throw new ValidationError(`${option} gives both nodes (Cluster) and sentinels; pick one`, {
        option,
      });
    }
    const sentinel = validateSentinelInput(input, option);
    return {
      kind: 'sentinel',
      sentinel,
      description: describeSentinel(sentinel.name, sentinel.sentinels),
      secrets: [sentinel.password, sentinel.sentinelPassword].filter(
        (p): p is string => typeof p === 'string' && p.length > 0,
      ),
    };
  }
  if (isClusterInput(input)) {
    if (input.nodes.length === 0) {
      throw new ValidationError(`${option}.nodes must list at least one node`, {
        option: `${option}.nodes`,
      });
    }
    for (const n of input.nodes) {
      if (
        typeof n?.host !== 'string' ||
        !Number.isInteger(n.port) ||
        n.port <= 0 ||
        n.port > 65535
      ) {
        throw new ValidationError(
          `${option}.nodes entries must be { host: string, port: 1..65535 }, received ${describeValue(n)}`,
          { option: `${option}.nodes` },
        );
      }
    }
    return {
      kind: 'cluster',
      cluster: input,
      description: `cluster(${input.nodes.map((n) => `${n.host}:${n.port}`).join(',')})`,
      secrets: input.password ? [input.password] : [],
    };
  }
  throw new ValidationError(
    `${option} must be a redis:// URL, an ioredis Redis or Cluster, { nodes: [{ host, port }] } or { sentinels: [{ host, port }], name }, received ${describeValue(input)}`,
    { option },
  );
}

/**
 * A password-free description of an ioredis client (`redis://host:port`, `cluster(N masters)` or
 * `sentinel(name@host:port,...)`) for messages, and the secrets its options hold, to mask in them.
 */
export function describeClient(client: RedisClient): {
  /** `redis://host:port`, `cluster(N masters)` or `sentinel(name@host:port,...)`; never a password. */
  description: string;
  /** Passwords found in the client's options, to mask in messages. */
  secrets: string[];
} {
  const isCluster = 'isCluster' in client && client.isCluster;
  const opts = (isCluster ? (client as Cluster).options.redisOptions : (client as Redis).options) as
    | RedisOptions
    | undefined;
  const sentinels = !isCluster && Array.isArray(opts?.sentinels) ? opts.sentinels : undefined;
  const description = isCluster
    ? `cluster(${(client as Cluster).nodes('master').length || 'unknown'} masters)`
    : sentinels && sentinels.length > 0
      ? describeSentinel(String(opts?.name ?? 'mymaster'), sentinels)
      : `redis://${opts?.host ?? 'localhost'}:${opts?.port ?? 6379}`;
  const secrets = [opts?.password, opts?.sentinelPassword].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  return { description, secrets };
}

function describeSentinel(
  name: string,
  sentinels: ReadonlyArray<{ host?: string | null; port?: number | null }>,
): string {
  const list = sentinels.map((n) => `${n.host ?? 'localhost'}:${n.port ?? 26379}`).join(',');
  return `sentinel(${name}@${list})`;
}

function isSentinelInput(v: unknown): v is RedisSentinelInput {
  return typeof v === 'object' && v !== null && Object.hasOwn(v, 'sentinels');
}

// Names a Sentinel configuration could hold but that, as JavaScript property names, point at an
// object's prototype: one read from parsed JSON or an env map would be a lookup into Object.
const PROTOTYPE_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const SENTINEL_ROLES = new Set(['master', 'replica', 'slave']);

/** Checks `{ sentinels, name, ... }` field by field; own properties only. */
function validateSentinelInput(input: RedisSentinelInput, option: string): RedisSentinelInput {
  const own = <K extends keyof RedisSentinelInput>(k: K): RedisSentinelInput[K] | undefined =>
    Object.hasOwn(input, k) ? input[k] : undefined;
  const list = own('sentinels');
  if (!Array.isArray(list) || list.length === 0) {
    throw new ValidationError(
      `${option}.sentinels must list at least one { host, port }, received ${describeValue(list)}`,
      { option: `${option}.sentinels` },
    );
  }
  const sentinels = list.map((n: unknown) => {
    const e = n as { host?: unknown; port?: unknown } | null;
    if (
      typeof e !== 'object' ||
      e === null ||
      typeof e.host !== 'string' ||
      e.host.length === 0 ||
      !Number.isInteger(e.port) ||
      (e.port as number) <= 0 ||
      (e.port as number) > 65535
    ) {
      throw new ValidationError(
        `${option}.sentinels entries must be { host: string, port: 1..65535 }, received ${describeValue(n)}`,
        { option: `${option}.sentinels` },
      );
    }
    return { host: e.host, port: e.port as number };
  });
  const name = own('name');
  if (typeof name !== 'string' || name.length === 0 || !/^[\x21-\x7e]{1,256}$/.test(name)) {
    throw new ValidationError(
      `${option}.name must be the primary's name in the Sentinel configuration (1-256 printable characters, no spaces), received ${describeValue(name)}`,
      { option: `${option}.name` },
    );
  }
  if (PROTOTYPE_NAMES.has(name)) {
    throw new ValidationError(`${option}.name must not be ${JSON.stringify(name)}`, {
      option: `${option}.name`,
    });
  }
  for (const k of ['password', 'username', 'sentinelPassword', 'sentinelUsername'] as const) {
    const v = own(k);
    if (v !== undefined && typeof v !== 'string') {
      throw new ValidationError(`${option}.${k} must be a string, received ${describeValue(v)}`, {
        option: `${option}.${k}`,
      });
    }
  }
  const role = own('role');
  if (role !== undefined && !SENTINEL_ROLES.has(role as string)) {
    throw new ValidationError(
      `${option}.role must be 'master' or 'replica', received ${describeValue(role)}`,
      { option: `${option}.role` },
    );
  }
  const db = own('db');
  if (db !== undefined) assertNumber(db, `${option}.db`, { integer: true, min: 0, max: 65535 });
  const tls = own('tls');
  if (tls !== undefined && typeof tls !== 'boolean') {
    throw new ValidationError(`${option}.tls must be a boolean, received ${describeValue(tls)}`, {
      option: `${option}.tls`,
    });
  }
  const extra = own('options');
  if (extra !== undefined && (typeof extra !== 'object' || extra === null)) {
    throw new ValidationError(
      `${option}.options must be an ioredis options object, received ${describeValue(extra)}`,
      { option: `${option}.options` },
    );
  }
  return {
    sentinels,
    name,
    ...(own('password') ? { password: own('password') } : {}),
    ...(own('username') ? { username: own('username') } : {}),
    ...(own('sentinelPassword') ? { sentinelPassword: own('sentinelPassword') } : {}),
    ...(own('sentinelUsername') ? { sentinelUsername: own('sentinelUsername') } : {}),
    ...(role !== undefined ? { role: role as RedisSentinelInput['role'] } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(db !== undefined ? { db } : {}),
    ...(extra !== undefined ? { options: extra } : {}),
  };
}

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
    const o = { ...DEFAULTS, ...stripUndefined(options) };
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
