import { randomBytes } from 'node:crypto';
import { JsonCodec } from '../core/codec.js';
import { type RedisInput, resolveRedis } from '../core/connection.js';
import {
  type DurabilityOptions,
  durabilityNeedsRedis,
  resolveDurability,
} from '../core/durability.js';
import {
  ClosedError,
  ConflictError,
  SerializationError,
  CallbackError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { KEY_LAYOUT, validateId, validatePrefix } from '../core/keys.js';
import {
  type CounterHandle,
  type HistogramHandle,
  type MetricsSink,
  noopMetrics,
  secondsSince,
} from '../core/metrics.js';
import { MAX_TIMER_MS, optionalDuration, sleep } from '../core/timers.js';
import { assertFunction, assertObject, optionalNumber } from '../core/validate.js';
import { isTracingEnabled, withSpan } from '../core/trace.js';
import { MemorySessionStore } from './memory-store.js';
import { RedisSessionStore } from './redis-store.js';
import type { SessionAppendOptions, SessionStore } from './store.js';

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

/** Options of {@link DistributedSessionManager}. */
export interface DistributedSessionManagerOptions {
  /**
   * Where sessions live: a `redis://` URL, an ioredis `Redis` or `Cluster` (yours; never closed
   * by us), or `{ nodes: [{ host, port }] }` for a Cluster we create and close. Omit it for the
   * embedded in-memory store.
   * @default undefined (embedded memory store)
   * @example new DistributedSessionManager({ redis: process.env.REDIS_URL })
   */
  redis?: RedisInput;
  /**
   * A custom backend implementing {@link SessionStore}; excludes `redis`. The manager closes it
   * in {@link DistributedSessionManager.close}.
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

type Operation = 'get' | 'save' | 'delete' | 'extend' | 'update' | 'append';
const OPERATIONS: readonly Operation[] = ['get', 'save', 'delete', 'extend', 'update', 'append'];

/**
 * A new session id: 128 random bits from the OS CSPRNG, base64url-encoded (22 characters, safe
 * in URLs, cookies and Redis keys).
 */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Sessions shared by every instance of a service ("stateless services, state in Redis"), with
 * updates that are never lost: `appendMessage` runs as one server-side step and
 * `updateSession`/`withSession` use compare-and-set on the stored value with bounded retries.
 * Without a `redis` option it runs on an in-memory store with the same semantics.
 *
 * @example
 * const sessions = new DistributedSessionManager({ redis: 'redis://localhost:6379' });
 * const id = newSessionId();
 * await sessions.appendMessage(id, { role: 'user', content: 'hello' });
 * const { messages } = await sessions.getSession(id);
 */
export class DistributedSessionManager<T extends SessionData = SessionData> {
  /** TTL in seconds. */
  readonly ttl: number;
  /** Key prefix. */
  readonly prefix: string;
  /** Message cap, if any. */
  readonly maxMessages: number | undefined;
  /** Size limit in bytes. */
  readonly maxValueBytes: number;
  /** Whether reads refresh the TTL. */
  readonly sliding: boolean;
  /** Retries of an optimistic update. */
  readonly maxRetries: number;
  /** The backend. */
  readonly store: SessionStore;

  private readonly ttlMs: number;
  private readonly appendOptions: SessionAppendOptions;
  private readonly codec: JsonCodec;
  private readonly events = new Emitter<SessionEvents>();
  private readonly timers: Record<Operation, HistogramHandle>;
  private readonly errors: Record<Operation, CounterHandle>;
  private readonly conflicts: CounterHandle;
  private readonly conflictFailures: CounterHandle;
  private readonly timed: boolean;
  private closed = false;

  constructor(options: DistributedSessionManagerOptions = {}) {
    assertObject(options, 'options');
    // Redis takes any PX below 2^63; ten years (MAX_DURATION_SECONDS) keeps ms arithmetic exact.
    this.ttl = optionalDuration(options.ttl, 'ttl') ?? 3600;
    optionalDuration(options.connectTimeout, 'connectTimeout', { max: MAX_TIMER_MS / 1000 });
    optionalDuration(options.commandTimeout, 'commandTimeout', { max: MAX_TIMER_MS / 1000 });
    this.ttlMs = Math.max(1, Math.round(this.ttl * 1000));
    this.prefix =
      options.prefix === undefined ? KEY_LAYOUT.session : validatePrefix(options.prefix, 'prefix');
    this.maxMessages = optionalNumber(options.maxMessages, 'maxMessages', {
      integer: true,
      positive: true,
    });
    this.codec = new JsonCodec({ maxValueBytes: options.maxValueBytes });
    this.maxValueBytes = this.codec.maxValueBytes;
    this.appendOptions = {
      ttlMs: this.ttlMs,
      maxItems: this.maxMessages,
      maxBytes: this.maxValueBytes,
    };
    if (options.sliding !== undefined && typeof options.sliding !== 'boolean') {
      throw new ValidationError(
        `sliding must be a boolean, received ${describeValue(options.sliding)}`,
        { option: 'sliding' },
      );
    }
    this.sliding = options.sliding ?? false;
    this.maxRetries =
      optionalNumber(options.maxRetries, 'maxRetries', { integer: true, min: 0, max: 1000 }) ?? 10;
    if (options.store !== undefined && options.redis !== undefined) {
      throw new ValidationError('give either redis or store, not both', { option: 'store' });
    }
    const durability = resolveDurability(options.durability);
    if (options.store !== undefined) {
      // A custom store acknowledges on its own terms: it cannot be made to WAIT.
      if (durability) throw durabilityNeedsRedis();
      const s = assertObject(options.store, 'store') as unknown as SessionStore;
      for (const m of [
        'get',
        'set',
        'delete',
        'expire',
        'ttl',
        'compareAndSet',
        'append',
        'close',
      ]) {
        assertFunction((s as unknown as Record<string, unknown>)[m], `store.${m}`);
      }
      this.store = s;
    } else {
      const conn = resolveRedis(options.redis, {
        connectTimeout: options.connectTimeout,
        commandTimeout: options.commandTimeout,
      });
      if (durability && !conn) throw durabilityNeedsRedis();
      this.store = conn
        ? new RedisSessionStore(conn, durability ? { durability: options.durability } : {})
        : new MemorySessionStore();
    }
    const metrics = options.metrics ?? noopMetrics;
    this.timed = metrics !== noopMetrics;
    const timers = {} as Record<Operation, HistogramHandle>;
    const errors = {} as Record<Operation, CounterHandle>;
    for (const op of OPERATIONS) {
      timers[op] = metrics.histogram('session_operation_seconds', { operation: op });
      errors[op] = metrics.counter('session_errors_total', { operation: op });
    }
    this.timers = timers;
    this.errors = errors;
    this.conflicts = metrics.counter('session_conflicts_total');
    this.conflictFailures = metrics.counter('session_conflict_failures_total');
  }

  /** A new session id (see {@link newSessionId}). */
  newSessionId(): string {
    return newSessionId();
  }

  /** Listens to an event; returns a disposer. */
  on<K extends keyof SessionEvents>(event: K, listener: SessionEvents[K]): Disposer {
    return this.events.on(event, listener);
  }

  /**
   * The session, or `{ messages: [] }` when none exists (as the seed). A stored object without
   * `messages` gets an empty one. With `sliding`, the read also resets the TTL.
   * @throws SerializationError when the stored text is not a JSON object.
   */
  getSession(id: string): Promise<T> {
    if (!isTracingEnabled()) return this.getSessionNow(id);
    return withSpan('azscale.session.get', undefined, () => this.getSessionNow(id));
  }

  private async getSessionNow(id: string): Promise<T> {
    const key = this.key(id);
    // The hot paths inline what op() does: one async frame less per call.
    const t0 = this.timed ? performance.now() : 0;
    try {
      return this.decode(await this.store.get(key, this.sliding ? this.ttlMs : undefined), key);
    } catch (e) {
      this.errors.get.inc();
      throw e;
    } finally {
      if (this.timed) this.timers.get.observe(secondsSince(t0));
    }
  }

  /**
   * Writes the whole session with the TTL (SETEX semantics): last writer wins, as in the seed.
   * Use {@link updateSession} or {@link appendMessage} when another request may write the same
   * session at the same time.
   * @throws ValidationError when `data` is not an object; SerializationError when it cannot be
   *   encoded as JSON; ValueTooLargeError over `maxValueBytes`.
   */
  saveSession(id: string, data: T): Promise<void> {
    if (!isTracingEnabled()) return this.saveSessionNow(id, data);
    return withSpan('azscale.session.save', undefined, () => this.saveSessionNow(id, data));
  }

  private async saveSessionNow(id: string, data: T): Promise<void> {
    const key = this.key(id);
    const text = this.encode(data, 'data');
    const t0 = this.timed ? performance.now() : 0;
    try {
      await this.store.set(key, text, this.ttlMs);
    } catch (e) {
      this.errors.save.inc();
      throw e;
    } finally {
      if (this.timed) this.timers.save.observe(secondsSince(t0));
    }
  }

  /** Deletes the session; resolves whether it existed. */
  deleteSession(id: string): Promise<boolean> {
    if (!isTracingEnabled()) return this.deleteSessionNow(id);
    return withSpan('azscale.session.delete', undefined, () => this.deleteSessionNow(id));
  }

  private async deleteSessionNow(id: string): Promise<boolean> {
    const key = this.key(id);
    return this.op('delete', () => this.store.delete(key));
  }

  /** Resets the session's TTL to `ttl` seconds; resolves whether the session existed. */
  extendSession(id: string): Promise<boolean> {
    if (!isTracingEnabled()) return this.extendSessionNow(id);
    return withSpan('azscale.session.extend', undefined, () => this.extendSessionNow(id));
  }

  private async extendSessionNow(id: string): Promise<boolean> {
    const key = this.key(id);
    return this.op('extend', () => this.store.expire(key, this.ttlMs));
  }

  /**
   * Seconds until the session expires, or `null` when it does not exist (`-1`: no expiry, e.g.
   * a key another writer set without one).
   */
  async remainingTtl(id: string): Promise<number | null> {
    const key = this.key(id);
    this.assertOpen();
    const ms = await this.store.ttl(key);
    return ms === null || ms < 0 ? ms : ms / 1000;
  }

  /**
   * Atomic read-modify-write. `fn` gets the current session (a private copy; `{ messages: [] }`
   * when none exists) and returns the next one, or `undefined` to keep the (mutated) copy it
   * got. The result is written only if the stored value is still exactly what was read (by
   * anyone: another instance, or a Python service from the seed writing the same key);
   * otherwise `fn` runs again on the fresh value, at most `maxRetries` more times.
   *
   * `fn` may therefore run more than once: keep side effects out of it, or make them idempotent.
   * @returns the session as written.
   * @throws ConflictError when every attempt lost to a concurrent writer; CallbackError
   *   when `fn` throws (its error is the `cause`); ValidationError / SerializationError /
   *   ValueTooLargeError for a result that cannot be stored. The stored session is then unchanged.
   */
  updateSession(
    id: string,
    fn: (current: T) => T | undefined | Promise<T | undefined>,
    options: UpdateSessionOptions = {},
  ): Promise<T> {
    if (!isTracingEnabled()) return this.updateSessionNow(id, fn, options);
    return withSpan('azscale.session.update', undefined, () =>
      this.updateSessionNow(id, fn, options),
    );
  }

  private async updateSessionNow(
    id: string,
    fn: (current: T) => T | undefined | Promise<T | undefined>,
    options: UpdateSessionOptions,
  ): Promise<T> {
    const key = this.key(id);
    assertFunction(fn, 'fn');
    const maxRetries =
      optionalNumber(options.maxRetries, 'maxRetries', { integer: true, min: 0, max: 1000 }) ??
      this.maxRetries;
    return this.op('update', async () => {
      for (let attempt = 1; ; attempt++) {
        this.assertOpen();
        const before = await this.store.get(key);
        const current = this.decode(before, key);
        let next: T | undefined;
        try {
          next = await fn(current);
        } catch (e) {
          throw new CallbackError(
            `the update function for session ${JSON.stringify(id)} threw: ${e instanceof Error ? e.message : String(e)}`,
            { cause: e, context: { id } },
          );
        }
        const value = next === undefined ? current : next;
        const text = this.encode(value, 'the update function result');
        if (await this.store.compareAndSet(key, before, text, this.ttlMs)) {
          return this.decode(text, key);
        }
        const willRetry = attempt <= maxRetries;
        this.conflicts.inc();
        this.events.emit('conflict', { id, attempt, willRetry });
        if (!willRetry) {
          this.conflictFailures.inc();
          throw new ConflictError(
            `session ${JSON.stringify(id)} was changed by another writer during each of ${attempt} attempts`,
            { context: { id, attempts: attempt } },
          );
        }
        // Full jitter, capped: concurrent updaters spread out instead of colliding in lockstep.
        await sleep(Math.random() * Math.min(100, 2 ** attempt));
      }
    });
  }

  /**
   * Appends `message` to the session's history in one atomic step (creating the session when
   * it does not exist), keeps at most `maxMessages` (oldest dropped), resets the TTL and
   * resolves the new number of messages. Concurrent appends from any number of instances are
   * all kept, each once, and it never fails with `ConflictError`: on Redis a call that loses a
   * compare-and-set race finishes with a server-side script that cannot lose one.
   *
   * With `options.maxBytes` a session that would grow past it drops its oldest messages
   * (keeping the first `system` message) instead of failing. Each call applies once even when
   * Redis drops the reply and ioredis resends the command (an operation record guards it).
   * @throws SerializationError when `message` cannot be encoded or the stored session is not a
   *   JSON object with an array `messages`; ValueTooLargeError when the result would exceed
   *   `maxValueBytes` (or `maxBytes`, after trimming); ValidationError for a bad `maxBytes`.
   *   The stored session is then unchanged.
   */
  appendMessage(
    id: string,
    message: T['messages'][number],
    options?: AppendMessageOptions,
  ): Promise<number> {
    if (!isTracingEnabled()) return this.appendMessageNow(id, message, options);
    return withSpan('azscale.session.append', undefined, () =>
      this.appendMessageNow(id, message, options),
    );
  }

  private async appendMessageNow(
    id: string,
    message: T['messages'][number],
    options: AppendMessageOptions | undefined,
  ): Promise<number> {
    const key = this.key(id);
    const appendOptions = this.appendOptionsFor(options);
    if (message === undefined) {
      throw new ValidationError('message must be a JSON value, received undefined', {
        option: 'message',
      });
    }
    const item = this.encodeValue(message, 'message');
    const t0 = this.timed ? performance.now() : 0;
    try {
      return await this.store.append(key, item, appendOptions);
    } catch (e) {
      this.errors.append.inc();
      throw e;
    } finally {
      if (this.timed) this.timers.append.observe(secondsSince(t0));
    }
  }

  /**
   * Appends several messages in one atomic step, in order and next to each other (a user turn
   * and the reply, say): no concurrent append can land between them. Otherwise as
   * {@link appendMessage}; with `maxMessages`, a batch longer than the cap keeps its last
   * `maxMessages` entries.
   * @returns the new number of messages.
   * @throws ValidationError when `messages` is not a non-empty array; as `appendMessage`
   *   otherwise.
   */
  appendMessages(
    id: string,
    messages: readonly T['messages'][number][],
    options?: AppendMessageOptions,
  ): Promise<number> {
    if (!isTracingEnabled()) return this.appendMessagesNow(id, messages, options);
    return withSpan('azscale.session.append', undefined, () =>
      this.appendMessagesNow(id, messages, options),
    );
  }

  private async appendMessagesNow(
    id: string,
    messages: readonly T['messages'][number][],
    options: AppendMessageOptions | undefined,
  ): Promise<number> {
    const key = this.key(id);
    const appendOptions = this.appendOptionsFor(options);
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new ValidationError(
        `messages must be a non-empty array, received ${describeValue(messages)}`,
        { option: 'messages' },
      );
    }
    const index = messages.indexOf(undefined as never);
    if (index >= 0) {
      throw new ValidationError(`messages[${index}] must be a JSON value, received undefined`, {
        option: 'messages',
      });
    }
    const max = this.maxMessages;
    const skip = max !== undefined && messages.length > max ? messages.length - max : 0;
    const items: string[] = [];
    for (let i = skip; i < messages.length; i++) {
      items.push(this.encodeValue(messages[i], `messages[${i}]`));
    }
    const t0 = this.timed ? performance.now() : 0;
    try {
      return await this.store.append(key, items.join(','), {
        ...appendOptions,
        count: items.length,
      });
    } catch (e) {
      this.errors.append.inc();
      throw e;
    } finally {
      if (this.timed) this.timers.append.observe(secondsSince(t0));
    }
  }

  /**
   * Loads the session, runs `fn` with it and saves what `fn` left in it, atomically (an
   * {@link updateSession} whose function mutates the session in place). Resolves `fn`'s result.
   * Like `updateSession`, `fn` runs again when another writer changed the session meanwhile.
   *
   * @example
   * const reply = await sessions.withSession(id, async (s) => {
   *   s.messages.push({ role: 'user', content: text });
   *   return s.messages.length;
   * });
   */
  async withSession<R>(
    id: string,
    fn: (session: T) => R | Promise<R>,
    options: UpdateSessionOptions = {},
  ): Promise<R> {
    assertFunction(fn, 'fn');
    let result: R | undefined;
    await this.updateSession(
      id,
      async (session) => {
        result = await fn(session);
        return session;
      },
      options,
    );
    return result as R;
  }

  /** Closes the backend (a Redis client only if we created it). Later calls throw ClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.events.clear();
    await this.store.close();
  }

  /** The store options of one append: the manager's, or trimming to the call's `maxBytes`. */
  private appendOptionsFor(options: AppendMessageOptions | undefined): SessionAppendOptions {
    if (options === undefined) return this.appendOptions;
    assertObject(options, 'options');
    if (options.maxBytes === undefined) return this.appendOptions;
    const maxBytes = optionalNumber(options.maxBytes, 'maxBytes', {
      integer: true,
      positive: true,
    }) as number;
    return { ...this.appendOptions, maxBytes: Math.min(maxBytes, this.maxValueBytes), trim: true };
  }

  private key(id: string): string {
    this.assertOpen();
    return this.prefix + validateId(id, 'id');
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError('the DistributedSessionManager is closed');
  }

  private async op<R>(operation: Operation, fn: () => Promise<R>): Promise<R> {
    if (!this.timed) {
      try {
        return await fn();
      } catch (e) {
        this.errors[operation].inc();
        throw e;
      }
    }
    const t0 = performance.now();
    try {
      return await fn();
    } catch (e) {
      this.errors[operation].inc();
      throw e;
    } finally {
      this.timers[operation].observe(secondsSince(t0));
    }
  }

  private decode(text: string | null, key: string): T {
    if (text === null) return { messages: [] } as unknown as T;
    const value = this.codec.decode<unknown>(text, `stored session at ${key}`);
    if (!isPlainObject(value)) {
      throw new SerializationError(`stored session at ${key} is not a JSON object`, {
        context: { key },
      });
    }
    if (value.messages === undefined) value.messages = [];
    return value as T;
  }

  private encode(data: unknown, what: string): string {
    if (!isPlainObject(data)) {
      throw new ValidationError(`${what} must be an object, received ${describeValue(data)}`, {
        option: what === 'data' ? 'data' : 'fn',
      });
    }
    let value = data;
    const max = this.maxMessages;
    if (max !== undefined && Array.isArray(value.messages) && value.messages.length > max) {
      value = { ...value, messages: value.messages.slice(value.messages.length - max) };
    }
    return this.encodeValue(value, what);
  }

  /**
   * JSON text of `value`, refusing what JSON cannot hold. Plain `JSON.stringify` plus a walk
   * that finds functions and symbols (which stringify would silently drop) costs about a third
   * of a stringify with a replacer function, and this runs on every write.
   */
  private encodeValue(value: unknown, what: string): string {
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      // A cycle, a BigInt or a throwing toJSON.
      throw new SerializationError(
        `${what} cannot be encoded as JSON: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
    const bad = unencodable(value);
    if (bad !== undefined || text === undefined) {
      const path =
        bad === undefined
          ? what
          : what + bad.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
      throw new SerializationError(
        `${what} cannot be encoded as JSON: ${bad?.type ?? typeof value} at ${path}`,
        { context: { type: bad?.type ?? typeof value, path } },
      );
    }
    this.codec.checkSize(text, what);
    return text;
  }
}

/**
 * The first function or symbol inside `value`, with the path to it (built only on the way back
 * from a find, so the common case allocates nothing), or `undefined`. Only called after
 * `JSON.stringify` succeeded, so there is no cycle to guard against. Subtrees with a `toJSON`
 * method are skipped: stringify encodes what that returns, not the object.
 */
function unencodable(value: unknown): { type: string; path: (string | number)[] } | undefined {
  const t = typeof value;
  if (t === 'function' || t === 'symbol') return { type: t, path: [] };
  if (t !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'object' || typeof v === 'function' || typeof v === 'symbol') {
        const bad = unencodable(v);
        if (bad) {
          bad.path.unshift(i);
          return bad;
        }
      }
    }
    return undefined;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    if (typeof v === 'object' || typeof v === 'function' || typeof v === 'symbol') {
      const bad = unencodable(v);
      if (bad) {
        bad.path.unshift(k);
        return bad;
      }
    }
  }
  return undefined;
}
