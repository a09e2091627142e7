/**
 * The backend contract of {@link DistributedSessionManager}. A store keeps JSON text under full
 * keys (the manager adds the prefix and does all encoding, validation and retry logic), so a
 * backend is small: seven operations, each atomic on its own.
 */

/** Options of {@link SessionStore.append}. */
export interface SessionAppendOptions {
  /** Expiry of the written value, in milliseconds (SETEX semantics: every write resets it). */
  ttlMs: number;
  /**
   * Keep at most this many items, dropping the oldest first.
   * @default undefined (no cap)
   */
  maxItems?: number;
  /** Largest allowed encoded session after the append, in bytes (UTF-8). */
  maxBytes: number;
  /**
   * How many comma-separated values `itemJson` holds (appended together, in order). At most
   * `maxItems`.
   * @default 1
   */
  count?: number;
  /**
   * Instead of failing over `maxBytes`, drop the oldest messages (never the first message whose
   * `role` is `"system"`, never the new ones) until the session fits. It still fails with
   * `ValueTooLargeError` when the new messages alone do not fit.
   * @default false
   */
  trim?: boolean;
  /**
   * Identifies this call, so that a backend which may run a command twice (ioredis resends a
   * command whose reply was lost) applies it once. Backends without that risk ignore it.
   * @default undefined (a fresh id per call, chosen by the backend)
   */
  opId?: string;
}

/**
 * Where sessions live. Values are the JSON text of a session object; every write sets the key's
 * expiry. Implementations: {@link MemorySessionStore} (embedded, the default) and
 * {@link RedisSessionStore} (standalone Redis or Cluster).
 *
 * A store passes the contract suite in `test/session/contract.ts` or it does not ship.
 */
export interface SessionStore {
  /**
   * The stored text, or `null` when the key does not exist (or has expired). With `touchTtlMs`
   * the read also resets the expiry to that many milliseconds, in the same atomic step.
   */
  get(key: string, touchTtlMs?: number): Promise<string | null>;
  /** Writes `text` with an expiry of `ttlMs` milliseconds (SETEX semantics). */
  set(key: string, text: string, ttlMs: number): Promise<void>;
  /** Deletes the key; resolves whether it existed. */
  delete(key: string): Promise<boolean>;
  /** Resets the key's expiry to `ttlMs` milliseconds; resolves whether the key existed. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /**
   * Milliseconds until the key expires, `-1` when it exists without an expiry, `null` when it
   * does not exist.
   */
  ttl(key: string): Promise<number | null>;
  /**
   * Writes `text` (with expiry `ttlMs`) only if the stored value is still exactly `expected`
   * (`null`: the key must not exist). Resolves `false`, writing nothing, when it changed: by
   * this library or by any other writer of the key. The comparison is of the value itself, never
   * of a side-band version number, so writers that know nothing of azscale are caught too.
   * `opId` identifies the call as in {@link SessionAppendOptions.opId}: a resent compare-and-set
   * that already succeeded resolves `true` again instead of `false`.
   */
  compareAndSet(
    key: string,
    expected: string | null,
    text: string,
    ttlMs: number,
    opId?: string,
  ): Promise<boolean>;
  /**
   * Appends the JSON text `itemJson` (one value, or `count` comma-separated values) to the
   * `messages` array of the session object at `key` in
   * one atomic step (creating `{"messages":[item]}` when the key does not exist), trims the array
   * to `maxItems` (oldest first), writes it with expiry `ttlMs` and resolves the new length.
   * Rejects with `SerializationError` (stored text is not a JSON object, or its `messages` is
   * not an array) or `ValueTooLargeError` (result over `maxBytes`, after trimming when `trim`),
   * writing nothing.
   */
  append(key: string, itemJson: string, options: SessionAppendOptions): Promise<number>;
  /** Releases what the store holds (timers, connections it created). Idempotent. */
  close(): Promise<void>;
}
