import { randomBytes } from 'node:crypto';
import type { ResolvedBackend } from '../core/backend.js';
import { JsonCodec } from '../core/codec.js';
import { ClosedError, ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { KEY_LAYOUT, validateId, validatePrefix } from '../core/keys.js';
import { type CounterHandle, type HistogramHandle, secondsSince } from '../core/metrics.js';
import { MAX_TIMER_MS, optionalDuration } from '../core/timers.js';
import { assertFunction, assertObject, optionalNumber } from '../core/validate.js';
import { withSpan } from '../core/trace.js';
import { decodeSession, encodeJson, encodeSession } from './json.js';
import type {
  AppendMessageOptions,
  DistributedSessionManagerOptions,
  SessionData,
  SessionEvents,
  UpdateSessionOptions,
} from './options.js';
import { type UpdateHost, runUpdate } from './update.js';
import { type Operation, openSessionStore, sessionMeters } from './wiring.js';
import type { SessionAppendOptions, SessionStore } from './store.js';

export type {
  AppendMessageOptions,
  DistributedSessionManagerOptions,
  SessionData,
  SessionEvents,
  SessionMessage,
  UpdateSessionOptions,
} from './options.js';

/**
 * A new session id: 128 random bits from the OS CSPRNG, base64url-encoded (22 characters, safe
 * in URLs, cookies and Redis keys).
 */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
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
  /** How the store was chosen; closing it closes what we created, never a store passed in. */
  private readonly backend: ResolvedBackend<SessionStore>;

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
  /** What the compare-and-set loop of `updateSession` works with. */
  private readonly updateHost: UpdateHost<T> = {
    store: () => this.store,
    ttlMs: () => this.ttlMs,
    assertOpen: () => this.assertOpen(),
    decode: (text, key) => this.decode(text, key),
    encode: (value) => this.encode(value, 'the update function result'),
    conflict: (id, attempt, willRetry) => {
      this.conflicts.inc();
      this.events.emit('conflict', { id, attempt, willRetry });
      if (!willRetry) this.conflictFailures.inc();
    },
  };

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
    this.backend = openSessionStore(options);
    this.store = this.backend.store;
    const m = sessionMeters(options.metrics);
    this.timed = m.timed;
    this.timers = m.timers;
    this.errors = m.errors;
    this.conflicts = m.conflicts;
    this.conflictFailures = m.conflictFailures;
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
    return withSpan('azscale.session.get', undefined, async () => {
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
    });
  }

  /**
   * Writes the whole session with the TTL (SETEX semantics): last writer wins, as in the seed.
   * Use {@link updateSession} or {@link appendMessage} when another request may write the same
   * session at the same time.
   * @throws ValidationError when `data` is not an object; SerializationError when it cannot be
   *   encoded as JSON; ValueTooLargeError over `maxValueBytes`.
   */
  saveSession(id: string, data: T): Promise<void> {
    return withSpan('azscale.session.save', undefined, async () => {
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
    });
  }

  /** Deletes the session; resolves whether it existed. */
  deleteSession(id: string): Promise<boolean> {
    return withSpan('azscale.session.delete', undefined, async () => {
      const key = this.key(id);
      return this.op('delete', () => this.store.delete(key));
    });
  }

  /** Resets the session's TTL to `ttl` seconds; resolves whether the session existed. */
  extendSession(id: string): Promise<boolean> {
    return withSpan('azscale.session.extend', undefined, async () => {
      const key = this.key(id);
      return this.op('extend', () => this.store.expire(key, this.ttlMs));
    });
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
    return withSpan('azscale.session.update', undefined, async () => {
      const key = this.key(id);
      assertFunction(fn, 'fn');
      const maxRetries =
        optionalNumber(options.maxRetries, 'maxRetries', { integer: true, min: 0, max: 1000 }) ??
        this.maxRetries;
      return this.op('update', () => runUpdate(this.updateHost, id, key, fn, maxRetries));
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
    return withSpan('azscale.session.append', undefined, async () => {
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
    });
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
    return withSpan('azscale.session.append', undefined, async () => {
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
    });
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
    await this.backend.close();
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
    return decodeSession<T>(this.codec, text, key);
  }

  private encode(data: unknown, what: string): string {
    return encodeSession(this.codec, data, what, this.maxMessages);
  }

  private encodeValue(value: unknown, what: string): string {
    return encodeJson(this.codec, value, what);
  }
}
