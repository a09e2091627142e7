import {
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisInput,
  resolveRedis,
  validateConnectionOptions,
} from './connection.js';
import { ValidationError, describeValue } from './errors.js';
import { validatePrefix } from './keys.js';

/**
 * The one place a stateful module turns its options into a backend: memory when nothing is
 * given, a Redis store over a connection we create (or over a client the user passed), or the
 * user's own store. Every module gives the same options the same meaning, refuses the same
 * mistakes with the same message, and follows the same ownership rule: what we created we close,
 * what was passed in we never close.
 */

/** Where a module's state lives, as {@link resolveBackend} chose it. */
export type BackendKind = 'memory' | 'redis' | 'custom';

/**
 * The backend options every stateful module accepts (cache, session, queue, breaker, limiters,
 * cost optimizer). Modules add their own options next to these.
 */
export interface BackendOptions<S = unknown> {
  /**
   * Share state through Redis: a `redis://`/`rediss://` URL, `{ nodes: [{ host, port }] }` for a
   * Cluster, `{ sentinels: [{ host, port }], name }` for a primary found through Sentinel, or an
   * ioredis `Redis`/`Cluster` you own (never closed by us). `undefined` or `null`: embedded
   * (memory, this process only).
   * @default undefined
   */
  redis?: RedisInput | null;
  /**
   * A custom backend object implementing the module's store interface. Never closed by us.
   * Cannot be combined with `redis`.
   * @default undefined
   */
  store?: S;
  /**
   * Alias of `store` (the worker's original name). Give one of the two.
   * @default undefined
   */
  backend?: S;
  /**
   * ioredis connection options (seconds) for a Redis client we create: `connectTimeout`,
   * `commandTimeout`, `maxRetriesPerRequest`, `offlineQueue`, `connectionName`.
   * @default {} (the module's defaults)
   */
  connection?: RedisConnectionOptions;
  /**
   * Alias of `connection` (the worker's original name). Give one of the two.
   * @default undefined
   */
  redisOptions?: RedisConnectionOptions;
  /**
   * Alias of `connection.connectTimeout` (seconds; the session manager's original option).
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Alias of `connection.commandTimeout` (seconds; the session manager's original option).
   * @default 5
   */
  commandTimeout?: number;
}

/** What a module tells {@link resolveBackend} about itself. */
export interface BackendSpec<M, R, S> {
  /** The module's public name, e.g. `ConcurrencyLimiter`: it starts every error message. */
  module: string;
  /** The store interface's name for messages, e.g. `SemaphoreStore`. */
  storeName: string;
  /** Builds the embedded store (no `redis`, no `store`). */
  memory: () => M;
  /**
   * Builds the Redis store over a connection the resolver made. `owned` says whether the client
   * is ours (a URL, nodes or sentinels) or the user's (a client passed in); the connection's own
   * `close()` already leaves a user's client open.
   */
  redis: (connection: RedisConnection, context: { prefix: string; owned: boolean }) => R;
  /**
   * True when `value` implements the store interface. May instead throw its own
   * `ValidationError` for a finer message (e.g. naming the missing method).
   */
  validateStore: (value: unknown) => value is S;
  /** The module's default Redis key prefix, used when `prefix` is not given. @default '' */
  prefix?: string;
  /** The module's defaults for a connection we create; the user's `connection` goes over them. */
  connection?: RedisConnectionOptions;
  /**
   * The option name the module documents first for a custom store (`store`, or the worker's
   * `backend`): used in messages when the user gave neither.
   * @default 'store'
   */
  storeOption?: 'store' | 'backend';
}

/** The backend a module runs on, and how to let go of it. */
export interface ResolvedBackend<T> {
  /** The store the module talks to. */
  readonly store: T;
  /** `memory`, `redis` or `custom` (a store the user passed). */
  readonly kind: BackendKind;
  /** True when we created the store, and so {@link ResolvedBackend.close} closes it. */
  readonly owned: boolean;
  /** The Redis connection under a `redis` store; undefined otherwise. */
  readonly connection: RedisConnection | undefined;
  /** The validated key prefix (the module's default when none was given). */
  readonly prefix: string;
  /**
   * Closes what we created (the store, then its connection, which leaves a user's client open);
   * leaves a custom store alone. Idempotent.
   */
  close(): Promise<void>;
}

const CONNECTION_KEYS: ReadonlySet<string> = new Set([
  'connectTimeout',
  'commandTimeout',
  'maxRetriesPerRequest',
  'offlineQueue',
  'connectionName',
]);

function given(o: object, key: string): boolean {
  // Own properties only: an options object built from parsed JSON must not pick up
  // `Object.prototype` entries, and `{ store: undefined }` means "not given".
  return Object.hasOwn(o, key) && (o as Record<string, unknown>)[key] !== undefined;
}

/**
 * Checks a `connection`-style object (or its alias) and returns its own, defined entries.
 * Unknown keys are refused rather than ignored: a misspelt timeout must not pass silently.
 */
function connectionObject(
  value: unknown,
  option: string,
  module: string,
): Partial<RedisConnectionOptions> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(
      `${module}: ${option} must be an object of Redis connection options, received ${describeValue(value)}`,
      { option },
    );
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!CONNECTION_KEYS.has(k)) {
      throw new ValidationError(
        `${module}: ${option}.${k} is not a connection option (${[...CONNECTION_KEYS].join(', ')})`,
        { option: `${option}.${k}` },
      );
    }
    if (v !== undefined) out[k] = v;
  }
  return out as Partial<RedisConnectionOptions>;
}

/**
 * The connection options for a client we create: the module's defaults, then `connection` (or
 * its alias `redisOptions`), with the top-level `connectTimeout`/`commandTimeout` aliases.
 * Giving the same setting two ways is refused, whatever the values.
 */
export function resolveConnectionOptions(
  options: BackendOptions,
  module: string,
  defaults: RedisConnectionOptions = {},
): RedisConnectionOptions {
  if (given(options, 'connection') && given(options, 'redisOptions')) {
    throw new ValidationError(
      `${module}: give either connection or redisOptions (its alias), not both`,
      { option: 'redisOptions' },
    );
  }
  const key = given(options, 'redisOptions') ? 'redisOptions' : 'connection';
  const user = given(options, key) ? connectionObject(options[key], key, module) : {};
  for (const alias of ['connectTimeout', 'commandTimeout'] as const) {
    if (!given(options, alias)) continue;
    if (user[alias] !== undefined) {
      throw new ValidationError(
        `${module}: give ${alias} either at the top level or in ${key}, not both`,
        { option: alias },
      );
    }
    user[alias] = options[alias];
  }
  const out = { ...defaults, ...user };
  // Checked even when embedded: a bad value must not wait for the day `redis` is set to fail.
  validateConnectionOptions(out);
  return out;
}

/**
 * Resolves a module's backend from its options (see {@link BackendOptions}):
 * - `store` (or its alias `backend`): the user's object, checked with `validateStore`; kind
 *   `custom`, never closed by us. With `redis` too: a `ValidationError`.
 * - `redis`: a {@link RedisConnection} (validated: URL, `{ nodes }`, `{ sentinels, name }` or
 *   a client) and the module's Redis store over it; kind `redis`.
 * - neither (or `redis: null`): the module's memory store; kind `memory`.
 *
 * Every mistake is a `ValidationError` naming the option, and its message starts with the
 * module's name, so the same mistake reads the same in every module.
 *
 * @example
 * const b = resolveBackend(options, {
 *   module: 'ConcurrencyLimiter',
 *   storeName: 'SemaphoreStore',
 *   prefix: 'azs:sem:',
 *   memory: () => new MemorySemaphoreStore(),
 *   redis: (conn, { prefix }) => new RedisSemaphoreStore(conn, { prefix }),
 *   validateStore: (x): x is SemaphoreStore => typeof (x as SemaphoreStore)?.acquire === 'function',
 * });
 */
export function resolveBackend<M, R, S>(
  options: BackendOptions<S> & { prefix?: unknown },
  spec: BackendSpec<M, R, S>,
): ResolvedBackend<M | R | S> {
  const module = spec.module;
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(
      `${module}: options must be an object, received ${describeValue(options)}`,
      { option: 'options' },
    );
  }
  const hasStore = given(options, 'store');
  const hasBackend = given(options, 'backend');
  if (hasStore && hasBackend) {
    throw new ValidationError(`${module}: give either store or backend (its alias), not both`, {
      option: 'backend',
    });
  }
  const storeOption = hasBackend ? 'backend' : hasStore ? 'store' : (spec.storeOption ?? 'store');
  const redis = given(options, 'redis') ? options.redis : undefined;
  const custom = hasStore ? options.store : hasBackend ? options.backend : undefined;
  if (custom !== undefined && redis !== undefined && redis !== null) {
    throw new ValidationError(`${module}: give either redis or ${storeOption}, not both`, {
      option: storeOption,
    });
  }
  const prefix = given(options, 'prefix')
    ? validatePrefix(options.prefix, 'prefix')
    : (spec.prefix ?? '');

  if (custom !== undefined) {
    if (typeof custom !== 'object' || custom === null || !spec.validateStore(custom)) {
      throw new ValidationError(
        `${module}: ${storeOption} must be a ${spec.storeName}, received ${describeValue(custom)}`,
        { option: storeOption },
      );
    }
    const hasConnection = ['connection', 'redisOptions', 'connectTimeout', 'commandTimeout'].find(
      (k) => given(options, k),
    );
    if (hasConnection) {
      // Nothing of ours connects to anything: the setting would be silently dropped.
      throw new ValidationError(
        `${module}: ${hasConnection} applies to a Redis we connect to; with ${storeOption} it has no effect`,
        { option: hasConnection },
      );
    }
    return settled(custom, 'custom', false, undefined, prefix);
  }

  const connOptions = resolveConnectionOptions(options, module, spec.connection);
  const conn = resolveRedis(redis as RedisInput | undefined | null, connOptions);
  if (!conn) return settled(spec.memory(), 'memory', true, undefined, prefix);
  let store: R;
  try {
    store = spec.redis(conn, { prefix, owned: conn.owned });
  } catch (e) {
    // The store refused its options: the connection (lazy, not yet connected) goes too.
    void conn.close();
    throw e;
  }
  return settled(store, 'redis', true, conn, prefix);
}

function settled<T>(
  store: T,
  kind: BackendKind,
  owned: boolean,
  connection: RedisConnection | undefined,
  prefix: string,
): ResolvedBackend<T> {
  let closing: Promise<void> | undefined;
  return {
    store,
    kind,
    owned,
    connection,
    prefix,
    close() {
      if (!owned) return Promise.resolve();
      closing ??= (async () => {
        const c = (store as { close?: () => unknown } | null)?.close;
        if (typeof c === 'function') await c.call(store);
        await connection?.close();
      })();
      return closing;
    },
  };
}

/** True when `value` is an object with every named method: a store-shape check for specs. */
export function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    methods.every((m) => typeof (value as Record<string, unknown>)[m] === 'function')
  );
}
