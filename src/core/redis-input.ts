import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { ValidationError, describeValue } from './errors.js';
import { assertNumber } from './validate.js';

// What a `redis` option accepts, and how it is checked and described (never with a password).

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

export function isClusterInput(v: unknown): v is RedisClusterInput {
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

/** @internal A checked `redis` option. */
export interface Target {
  kind: 'url' | 'cluster' | 'client' | 'sentinel';
  url?: URL;
  cluster?: RedisClusterInput;
  sentinel?: RedisSentinelInput;
  client?: RedisClient;
  description: string;
  secrets: string[];
}

/** @internal Checks a `redis` option; a `ValidationError` names `option` (or a field of it). */
export function resolveTarget(input: RedisInput, option: string): Target {
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
