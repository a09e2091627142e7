import type { Redis } from 'ioredis';
import { sanitizeError } from './backend-errors.js';
import type { RedisClient } from './connection.js';
import { DurabilityError, ValidationError, describeValue } from './errors.js';
import { keySlot } from '../cache/slot.js';
import { assertDuration } from './timers.js';
import { assertNumber } from './validate.js';

/**
 * Durable acknowledgements: after a write, ask the Redis primary that took it to confirm that
 * `replicas` replicas have it (`WAIT`, or `WAITAOF` on Redis 7.2+ when asked for), so that an
 * acknowledged write survives the loss of the primary. Redis replication is asynchronous: without
 * this, a write acknowledged just before a failover can vanish.
 *
 * `WAIT` counts what the replicas acknowledged for the *connection* that sent it (its last write
 * offset), so it must go over the same socket as the write. A reconnect between the two (ioredis
 * follows a failover, or re-sends commands after a broken socket) would send `WAIT` on a fresh
 * connection that has written nothing and is "confirmed" at once: that case is detected and
 * reported as a {@link DurabilityError}, never as success.
 */

/** Options of `durability` (TaskQueue, DistributedSessionManager, CostOptimizer). */
export interface DurabilityOptions {
  /**
   * Replicas that must confirm a write before it is acknowledged. `0` disables the wait.
   * @example { replicas: 1, timeout: 1 }
   */
  replicas: number;
  /**
   * Seconds to wait for the replicas before failing with {@link DurabilityError}. Keep it below
   * the connection's `commandTimeout` (default 5 s), which bounds every command, `WAIT` included.
   * @default 1
   */
  timeout?: number;
  /**
   * Also wait until the replicas have written the change to their append-only file
   * (`WAITAOF 0 replicas timeout`, Redis 7.2+, replicas need `appendonly yes`). On a server
   * without `WAITAOF` (Redis 7.0/7.1) plain `WAIT` is used instead.
   * @default false
   */
  aof?: boolean;
}

/** A validated `durability` option, as the modules keep it. */
export interface DurabilityPolicy {
  /** Replicas that must confirm. */
  readonly replicas: number;
  /** Milliseconds `WAIT` may block. */
  readonly timeoutMs: number;
  /** Use `WAITAOF` where the server has it. */
  readonly aof: boolean;
}

/** Largest `durability.replicas` accepted (Redis has no limit; more is surely a mistake). */
export const MAX_DURABILITY_REPLICAS = 100;
/** Largest `durability.timeout`, in seconds. */
export const MAX_DURABILITY_TIMEOUT_SECONDS = 3600;

const DEFAULT_TIMEOUT_SECONDS = 1;

/**
 * Validates a `durability` option. `undefined`/`null` and `{ replicas: 0 }` give `undefined`
 * (no wait). Throws {@link ValidationError} naming the field otherwise.
 */
export function resolveDurability(
  value: unknown,
  option = 'durability',
): DurabilityPolicy | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationError(
      `${option} must be { replicas, timeout? }, received ${describeValue(value)}`,
      { option },
    );
  }
  const own = (k: string): unknown => (Object.hasOwn(value, k) ? (value as never)[k] : undefined);
  const replicas = assertNumber(own('replicas'), `${option}.replicas`, {
    integer: true,
    min: 0,
    max: MAX_DURABILITY_REPLICAS,
  });
  const timeout = own('timeout');
  const seconds =
    timeout === undefined
      ? DEFAULT_TIMEOUT_SECONDS
      : assertDuration(timeout, `${option}.timeout`, { max: MAX_DURABILITY_TIMEOUT_SECONDS });
  const aof = own('aof');
  if (aof !== undefined && typeof aof !== 'boolean') {
    throw new ValidationError(`${option}.aof must be a boolean, received ${describeValue(aof)}`, {
      option: `${option}.aof`,
    });
  }
  if (replicas === 0) return undefined;
  return { replicas, timeoutMs: Math.max(1, Math.round(seconds * 1000)), aof: aof === true };
}

/** The error for a `durability` option given to a module that keeps its state in memory. */
export function durabilityNeedsRedis(option = 'durability'): ValidationError {
  return new ValidationError(
    `${option} needs a Redis (redis option): a write kept in this process's memory has no replicas to confirm it`,
    { option },
  );
}

/**
 * Runs `write` with `client`, then, when `policy` is set, waits until `policy.replicas` replicas
 * of the node that took the write (for a Cluster, the master of `key`'s slot) confirm it.
 * Returns what `write` returned; throws {@link DurabilityError} when too few confirmed, when the
 * wait failed, or when the connection changed between the write and the wait.
 */
export async function durableWrite<T>(
  policy: DurabilityPolicy | undefined,
  client: RedisClient,
  key: string,
  operation: string,
  write: (client: RedisClient) => Promise<T>,
): Promise<T> {
  if (!policy) return write(client);
  const before = nodeFor(client, key);
  const socketBefore = before?.stream;
  const result = await write(client);
  const node = nodeFor(client, key);
  const socket = node?.stream;
  const unconfirmed = (why: string, acknowledged = 0, cause?: unknown): DurabilityError =>
    new DurabilityError(
      `${operation}: the write was applied by the primary but ${why}; it may or may not survive a failover`,
      {
        acknowledged,
        required: policy.replicas,
        ...(cause === undefined ? {} : { cause }),
        context: { operation, key },
      },
    );
  if (
    !node ||
    !socket ||
    (before && (before !== node || (socketBefore && socketBefore !== socket)))
  ) {
    throw unconfirmed('the connection changed before replicas could confirm it');
  }
  let acknowledged: number;
  try {
    acknowledged = await waitReplicas(node, policy);
  } catch (e) {
    throw unconfirmed('waiting for replicas failed', 0, sanitizeError(e));
  }
  // A WAIT that ioredis re-sent after a reconnect ran on a socket that wrote nothing.
  if (node.stream !== socket) {
    throw unconfirmed('the connection changed while waiting for replicas');
  }
  if (acknowledged < policy.replicas) {
    throw unconfirmed(
      `only ${acknowledged} of ${policy.replicas} replicas confirmed it within ${policy.timeoutMs} ms`,
      acknowledged,
    );
  }
  return result;
}

// Per node connection: does the server know WAITAOF? Learnt from the first try.
const noWaitAof = new WeakSet<Redis>();

async function waitReplicas(node: Redis, policy: DurabilityPolicy): Promise<number> {
  if (policy.aof && !noWaitAof.has(node)) {
    try {
      const r = (await node.call('WAITAOF', 0, policy.replicas, policy.timeoutMs)) as [
        number,
        number,
      ];
      return Number(r[1]);
    } catch (e) {
      // Redis before 7.2: fall back to WAIT (in memory on the replicas, not yet fsynced).
      if (!(e instanceof Error && /unknown command/i.test(e.message))) throw e;
      noWaitAof.add(node);
    }
  }
  return Number(await node.call('WAIT', policy.replicas, policy.timeoutMs));
}

/** The standalone client, or the Cluster's connection to the master of `key`'s slot. */
function nodeFor(client: RedisClient, key: string): Redis | undefined {
  if (!('isCluster' in client && client.isCluster)) return client as Redis;
  // ioredis keeps the slot table and the node connections in fields its types mark private.
  const cluster = client as unknown as {
    slots?: string[][];
    connectionPool?: { getInstanceByKey(k: string): Redis | undefined };
  };
  const owner = cluster.slots?.[keySlot(key)]?.[0];
  return owner ? cluster.connectionPool?.getInstanceByKey(owner) : undefined;
}
