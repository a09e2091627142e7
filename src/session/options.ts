import type { BackendOptions } from '../core/backend.js';
import type { RedisInput } from '../core/connection.js';
import type { DurabilityOptions } from '../core/durability.js';
import type { MetricsSink } from '../core/metrics.js';
import type { SessionStore } from './store.js';

/** One entry of a session's history, as the seed stores it: `{ role, content }` plus anything. */
export interface SessionMessage {
  /** Who wrote it, e.g. `user`, `assistant`, `tool`. */
  role?: string;
  /** The text or structured content. */
  content?: unknown;
  [key: string]: unknown;
}

/**
 * A session: a JSON object with a `messages` history (the seed's shape) and any other fields.
 * It must survive `JSON.stringify` unchanged (no BigInt, functions, cycles, Dates come back as
 * strings).
 */
export interface SessionData {
  /** The conversation history, oldest first. */
  messages: SessionMessage[];
  [key: string]: unknown;
}

/**
 * Options of {@link DistributedSessionManager}. The backend options (`redis`, `store` and its
 * alias `backend`, `connection` and its aliases `redisOptions`, `connectTimeout`,
 * `commandTimeout`) mean what they mean in every azscale module (core's `BackendOptions`).
 */
export interface DistributedSessionManagerOptions extends BackendOptions<SessionStore> {
  /**
   * Where sessions live: a `redis://` URL, an ioredis `Redis` or `Cluster` (yours; never closed
   * by us), `{ nodes: [{ host, port }] }` for a Cluster or `{ sentinels, name }` for Sentinel we
   * create and close. Omit it (or `null`) for the embedded in-memory store.
   * @default undefined (embedded memory store)
   * @example new DistributedSessionManager({ redis: process.env.REDIS_URL })
   */
  redis?: RedisInput | null;
  /**
   * A custom backend implementing {@link SessionStore}; excludes `redis`. Yours: the manager
   * never closes it (0.1.0 did; the one ownership rule of every module now applies).
   * @default undefined (chosen from `redis`)
   */
  store?: SessionStore;
  /**
   * Lifetime of a session in seconds, reset by every write (SETEX semantics) and by
   * `extendSession`; also by reads when `sliding` is on. Fractions are allowed.
   * @default 3600 (the seed's one hour)
   */
  ttl?: number;
  /**
   * Key prefix; a session lives at `prefix + id`. The default is the seed's layout, so a Python
   * service written from the scaling guide shares sessions with this one.
   * @default "session:"
   */
  prefix?: string;
  /**
   * Keep at most this many messages per session, dropping the oldest first. Applied by
   * `appendMessage`, `saveSession`, `updateSession` and `withSession`.
   * @default undefined (no cap)
   */
  maxMessages?: number;
  /**
   * Largest session accepted, in bytes of encoded JSON (UTF-8). A write over it fails with
   * `ValueTooLargeError` and leaves the stored session unchanged.
   * @default 1048576 (1 MiB)
   */
  maxValueBytes?: number;
  /**
   * Sliding expiry: `getSession` also resets the TTL (atomically, `GETEX`). Off by default, as
   * in the seed, where only writes and `extendSession` do.
   * @default false
   */
  sliding?: boolean;
  /**
   * How many times `updateSession`/`withSession` re-read and re-run the update function after
   * another writer changed the session in between, before failing with `ConflictError`.
   * @default 10
   */
  maxRetries?: number;
  /**
   * Seconds to wait for a Redis connection before failing with `BackendUnavailableError`.
   * @default 5
   */
  connectTimeout?: number;
  /**
   * Seconds a single Redis command may take before it fails with `BackendUnavailableError`.
   * @default 5
   */
  commandTimeout?: number;
  /** Where metrics go (`session_operation_seconds`, `session_conflicts_total`, …). @default noopMetrics */
  metrics?: MetricsSink;
  /**
   * Acknowledge session writes and appends only once `replicas` Redis replicas have them
   * (`WAIT`; `timeout` in seconds); otherwise fail with `DurabilityError` (the write may or may
   * not survive a failover). Needs `redis`. See docs/operations.md.
   * @default undefined (off: acknowledged once the primary has it)
   */
  durability?: DurabilityOptions;
}

/** Events of {@link DistributedSessionManager}. */
export type SessionEvents = {
  /**
   * An optimistic update found the session changed by another writer and will retry
   * (`attempt` counts from 1) or, when `willRetry` is false, give up with `ConflictError`.
   */
  conflict: (info: { id: string; attempt: number; willRetry: boolean }) => void;
};

/** Options of {@link DistributedSessionManager.appendMessage} and `appendMessages`. */
export interface AppendMessageOptions {
  /**
   * Keep the session at most this many bytes (UTF-8 of its JSON text) by dropping its oldest
   * messages, never the first message whose `role` is `"system"` and never the ones being
   * appended, instead of failing with `ValueTooLargeError` at `maxValueBytes`. A long
   * conversation thus keeps its system prompt and its latest turns. Values above
   * `maxValueBytes` act as `maxValueBytes`. It still fails when the new messages alone (plus
   * the kept system message and the session's other fields) do not fit.
   * @default undefined (no trimming: a session over `maxValueBytes` fails the append)
   * @example await sessions.appendMessage(id, reply, { maxBytes: 256 * 1024 })
   */
  maxBytes?: number;
}

/** Options of {@link DistributedSessionManager.updateSession}. */
export interface UpdateSessionOptions {
  /**
   * Re-runs of the update function after a lost race, for this call only.
   * @default the manager's `maxRetries` (10 unless configured)
   */
  maxRetries?: number;
}
