import type { Cluster, Redis } from 'ioredis';
import type { RedisInput } from '../core/connection.js';
import {
  ClosedError,
  ConflictError,
  SerializationError,
  ValidationError,
  describeValue,
} from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { sleep } from '../core/timers.js';
import { assertObject, optionalNumber } from '../core/validate.js';
import { DistributedSessionManager } from '../session/manager.js';
import { MemorySessionStore } from '../session/memory-store.js';
import { RedisSessionStore } from '../session/redis-store.js';

/**
 * Options of a framework session store (`ExpressSessionStore`, `FastifySessionStore`, the Hono
 * session middleware): either a manager you own, or what to build one from (then the store
 * creates it and closes it in `close()`).
 */
export interface FrameworkSessionStoreOptions {
  /**
   * A {@link DistributedSessionManager} you own (never closed by the store). Its `prefix`,
   * `ttl` and `maxValueBytes` apply. Excludes `redis`, `prefix`, `ttl`.
   * @default undefined (the store builds its own from `redis`, `prefix`, `ttl`)
   */
  sessions?: DistributedSessionManager;
  /**
   * Where sessions live when the store builds its own manager: a `redis://` URL, an ioredis
   * `Redis`/`Cluster` (yours, never closed), or `{ nodes }` for a Cluster it creates and closes.
   * Omit both this and `sessions` for the embedded memory store (one process only).
   * @default undefined (embedded memory store)
   */
  redis?: RedisInput;
  /**
   * Key prefix when the store builds its own manager.
   * @default "sess:" (connect-redis' layout)
   */
  prefix?: string;
  /**
   * Seconds a session lives when its cookie has no `maxAge`/`expires`.
   * @default 86400 (one day, express-session's and connect-redis' default)
   */
  ttl?: number;
}

/** A session as the frameworks hand it over: an object, usually with a `cookie` field. */
export type FrameworkSession = Record<string, unknown> & {
  /**
   * The framework's cookie object; its `maxAge` (milliseconds) or `expires` (a `Date`) sets the
   * stored session's TTL when present.
   */
  cookie?: unknown;
};

const MAX_MERGE_ATTEMPTS = 100;

/**
 * What the framework stores share: a session id maps to `prefix + id` in the manager's backend,
 * JSON encoded, with the TTL taken from the cookie. Writes merge at the level of top-level
 * fields against what the request loaded, so a field another request (or the manager's atomic
 * `appendMessage`/`updateSession`) changed meanwhile is kept unless this request changed it too.
 */
export class SessionBridge {
  readonly sessions: DistributedSessionManager;
  private readonly owned: boolean;
  private closed = false;

  constructor(options: FrameworkSessionStoreOptions | undefined, what: string) {
    const o = (assertObject(options ?? {}, 'options') ?? {}) as FrameworkSessionStoreOptions;
    if (o.sessions !== undefined) {
      if (!(o.sessions instanceof DistributedSessionManager)) {
        throw new ValidationError(
          `${what}: sessions must be a DistributedSessionManager, received ${describeValue(o.sessions)}`,
          { option: 'sessions' },
        );
      }
      for (const k of ['redis', 'prefix', 'ttl'] as const) {
        if (o[k] !== undefined) {
          throw new ValidationError(
            `${what}: give either sessions or ${k}, not both (the manager has its own)`,
            { option: k },
          );
        }
      }
      this.sessions = o.sessions;
      this.owned = false;
    } else {
      const ttl = optionalNumber(o.ttl, 'ttl (seconds)', { positive: true, max: 315_360_000 });
      this.sessions = new DistributedSessionManager({
        redis: o.redis,
        prefix: o.prefix ?? 'sess:',
        ttl: ttl ?? 86_400,
      });
      this.owned = true;
    }
  }

  /** The stored key of a session id (validated: a bad cookie value must not reach Redis). */
  key(sid: unknown): string {
    return this.sessions.prefix + validateId(sid, 'session id', 256);
  }

  /** Milliseconds to keep a session: from its cookie, else the manager's ttl. */
  ttlMs(session: FrameworkSession | undefined): number {
    const cookie = session?.cookie as
      | { expires?: unknown; maxAge?: unknown; originalMaxAge?: unknown }
      | undefined;
    if (cookie && typeof cookie === 'object') {
      const exp = cookie.expires;
      if (exp !== undefined && exp !== null && exp !== false) {
        const at = exp instanceof Date ? exp.getTime() : new Date(exp as string).getTime();
        if (Number.isFinite(at)) return at - Date.now();
      }
      const maxAge = cookie.maxAge;
      if (typeof maxAge === 'number' && Number.isFinite(maxAge)) return maxAge;
    }
    return this.sessions.ttl * 1000;
  }

  /** The stored text, or null. */
  async load(sid: unknown): Promise<string | null> {
    this.assertOpen();
    return this.sessions.store.get(this.key(sid));
  }

  /** Parses stored text into a session object (null for none). */
  parse(text: string | null, sid: string): FrameworkSession | null {
    if (text === null) return null;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new SerializationError(`stored session ${sid} is not JSON`, {
        cause: e,
        context: { sid },
      });
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      throw new SerializationError(`stored session ${sid} is not a JSON object`, {
        context: { sid },
      });
    }
    return v as FrameworkSession;
  }

  /**
   * Writes `session` for `sid`. `base` is the text this request loaded (`undefined` when not
   * known: then the write replaces the stored session, last writer wins). A session whose cookie
   * has already expired is deleted instead.
   */
  async save(
    sid: unknown,
    session: FrameworkSession,
    base: string | null | undefined,
  ): Promise<void> {
    this.assertOpen();
    const key = this.key(sid);
    assertObject(session, 'session');
    const ttlMs = this.ttlMs(session);
    const store = this.sessions.store;
    if (ttlMs <= 0) {
      await store.delete(key);
      return;
    }
    const mine = toPlain(session);
    if (base === undefined) {
      await store.set(key, this.encode(mine, key), ttlMs);
      return;
    }
    const baseObj = base === null ? {} : safeParse(base);
    for (let attempt = 0; attempt < MAX_MERGE_ATTEMPTS; attempt++) {
      const theirs = await store.get(key);
      let next = mine;
      if (theirs !== base && theirs !== null) next = merge(mine, baseObj, safeParse(theirs));
      if (await store.compareAndSet(key, theirs, this.encode(next, key), ttlMs)) return;
      // Lost to another writer: back off a little (jittered, growing) so a crowd of requests of
      // one session spreads out instead of colliding again.
      await sleep(Math.random() * Math.min(50, 1 + attempt * 2));
    }
    // Never a blind overwrite: it would drop what the other writers stored (their appends).
    throw new ConflictError(
      `session write lost ${MAX_MERGE_ATTEMPTS} compare-and-set rounds to concurrent writers; nothing was written`,
      { context: { attempts: MAX_MERGE_ATTEMPTS } },
    );
  }

  /** Deletes the session. */
  async destroy(sid: unknown): Promise<void> {
    this.assertOpen();
    await this.sessions.store.delete(this.key(sid));
  }

  /** Resets the session's expiry from its cookie. */
  async touch(sid: unknown, session: FrameworkSession | undefined): Promise<void> {
    this.assertOpen();
    const key = this.key(sid);
    const ttlMs = this.ttlMs(session);
    if (ttlMs <= 0) await this.sessions.store.delete(key);
    else await this.sessions.store.expire(key, ttlMs);
  }

  /** Every stored session id (Redis: SCAN on every master of a Cluster; memory: its keys). */
  async ids(): Promise<string[]> {
    this.assertOpen();
    const prefix = this.sessions.prefix;
    const store = this.sessions.store;
    let keys: string[];
    if (store instanceof MemorySessionStore) keys = store.keys(prefix);
    else if (store instanceof RedisSessionStore) keys = await scanKeys(store, prefix);
    else {
      throw new ValidationError(
        'listing sessions needs the memory or the Redis session store; this manager has a custom store',
        { option: 'sessions' },
      );
    }
    return keys.map((k) => k.slice(prefix.length));
  }

  /** Every stored session, by id (sessions that expire while listed are left out). */
  async all(): Promise<Record<string, FrameworkSession>> {
    const out: Record<string, FrameworkSession> = Object.create(null);
    for (const id of await this.ids()) {
      const text = await this.sessions.store.get(this.sessions.prefix + id);
      const s = text === null ? null : safeParseOrNull(text);
      if (s !== null) out[id] = s;
    }
    return out;
  }

  /** Deletes every stored session under the prefix. */
  async clear(): Promise<void> {
    for (const id of await this.ids()) await this.sessions.store.delete(this.sessions.prefix + id);
  }

  /** Closes the manager if this store created it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) await this.sessions.close();
  }

  private encode(v: FrameworkSession, key: string): string {
    const text = JSON.stringify(v);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.sessions.maxValueBytes) {
      throw new ValidationError(
        `session at ${key} is ${bytes} bytes encoded, over maxValueBytes=${this.sessions.maxValueBytes}`,
        { option: 'session', context: { bytes, maxBytes: this.sessions.maxValueBytes } },
      );
    }
    return text;
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new ClosedError('the session store is closed');
    }
  }
}

/** The session's own JSON form (drops the frameworks' methods and symbol-keyed state). */
function toPlain(session: FrameworkSession): FrameworkSession {
  return JSON.parse(JSON.stringify(session)) as FrameworkSession;
}

function safeParse(text: string): Record<string, unknown> {
  return safeParseOrNull(text) ?? {};
}

function safeParseOrNull(text: string): FrameworkSession | null {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as FrameworkSession)
      : null;
  } catch {
    return null;
  }
}

/**
 * Three-way merge of top-level fields: a field this request left as it loaded it takes the
 * stored (newer) value; a field it changed keeps its value. The cookie is always the request's.
 */
function merge(
  mine: FrameworkSession,
  base: Record<string, unknown>,
  theirs: Record<string, unknown>,
): FrameworkSession {
  const out: FrameworkSession = { ...mine };
  const names = new Set([...Object.keys(base), ...Object.keys(theirs)]);
  for (const k of names) {
    if (k === 'cookie') continue;
    const changedByMe = JSON.stringify(mine[k]) !== JSON.stringify(base[k]);
    if (changedByMe) continue;
    // defineProperty, not assignment: a stored "__proto__" field must stay a plain field.
    if (Object.hasOwn(theirs, k)) {
      Object.defineProperty(out, k, {
        value: theirs[k],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else delete out[k];
  }
  return out;
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** SCAN for `prefix*`; on a Cluster, on every master (each holds its own slots' keys). */
async function scanKeys(store: RedisSessionStore, prefix: string): Promise<string[]> {
  const client = (await store.connection.get()) as Redis | Cluster;
  const nodes: Redis[] =
    (client as Cluster).isCluster === true
      ? (client as Cluster).nodes('master')
      : [client as Redis];
  const match = `${globEscape(prefix)}*`;
  const seen = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 500);
      cursor = next;
      for (const k of batch) seen.add(k);
    } while (cursor !== '0');
  }
  return [...seen];
}
