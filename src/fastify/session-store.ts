import {
  type FrameworkSession,
  type FrameworkSessionStoreOptions,
  SessionBridge,
} from '../frameworks/session-bridge.js';
import type { DistributedSessionManager } from '../session/manager.js';

/** Options of {@link FastifySessionStore}. */
export type FastifySessionStoreOptions = FrameworkSessionStoreOptions;

// biome-ignore lint/suspicious/noExplicitAny: structural compatibility with @fastify/session's types
type Callback = (err?: any, value?: any) => void;

interface Loaded {
  text: string;
  readers: number;
  ambiguous: boolean;
  at: number;
}

// A load nobody saved within this long (the request did not modify a non-rolling session) no
// longer counts as the base of a write.
const LOAD_MEMORY_MS = 60_000;
const MAX_TRACKED = 10_000;

function run<T>(p: Promise<T>, cb: Callback | undefined): void {
  p.then(
    (v) => cb?.(null, v),
    (e: unknown) => cb?.(e),
  );
}

/**
 * A `@fastify/session` store over a {@link DistributedSessionManager}, built like
 * `ExpressSessionStore`: `new FastifySessionStore({ sessions })` (a manager you own) or
 * `new FastifySessionStore({ redis, prefix, ttl })` (one it creates and closes in `close()`).
 * The TTL comes from the session cookie (`expires`/`maxAge`), else `ttl`.
 *
 * @fastify/session copies a loaded session into a new object, so the store cannot tag it with
 * what was loaded; it remembers the text each session id was loaded as in this process and
 * merges a write against it (fields another request or `appendMessage` changed meanwhile are
 * kept), unless two requests of one session loaded different texts at the same time: then that
 * write replaces the session (last writer wins, as `@fastify/session`'s own stores do).
 *
 * @example
 * await app.register(fastifyCookie);
 * await app.register(fastifySession, {
 *   secret: process.env.SESSION_SECRET!, store: new FastifySessionStore({ redis: process.env.REDIS_URL }),
 * });
 */
export class FastifySessionStore {
  /** The manager the sessions go through. */
  readonly sessions: DistributedSessionManager;
  private readonly bridge: SessionBridge;
  private readonly loads = new Map<string, Loaded>();

  constructor(options: FastifySessionStoreOptions = {}) {
    this.bridge = new SessionBridge(options, 'FastifySessionStore');
    this.sessions = this.bridge.sessions;
  }

  /** Loads a session (`null` when none). */
  get(sessionId: string, callback: Callback): void {
    run(
      this.bridge.load(sessionId).then((text) => {
        const s = this.bridge.parse(text, sessionId);
        if (text !== null) this.remember(sessionId, text);
        return s;
      }),
      callback,
    );
  }

  /** Stores a session with the TTL of its cookie. */
  // biome-ignore lint/suspicious/noExplicitAny: @fastify/session's Session
  set(sessionId: string, session: any, callback: Callback): void {
    run(this.bridge.save(sessionId, session as FrameworkSession, this.baseOf(sessionId)), callback);
  }

  /** Deletes a session. */
  destroy(sessionId: string, callback: Callback): void {
    this.loads.delete(sessionId);
    run(this.bridge.destroy(sessionId), callback);
  }

  /** Resets a session's expiry from its cookie. */
  // biome-ignore lint/suspicious/noExplicitAny: @fastify/session's Session
  touch(sessionId: string, session: any, callback: Callback): void {
    this.baseOf(sessionId);
    run(this.bridge.touch(sessionId, session as FrameworkSession), callback);
  }

  /** Every session, by id (SCAN; every master of a Cluster). */
  all(): Promise<Record<string, FrameworkSession>> {
    return this.bridge.all();
  }

  /** How many sessions are stored. */
  async length(): Promise<number> {
    return (await this.bridge.ids()).length;
  }

  /** Deletes every session under the prefix. */
  clear(): Promise<void> {
    this.loads.clear();
    return this.bridge.clear();
  }

  /** Closes the manager if this store created it. Idempotent. */
  close(): Promise<void> {
    this.loads.clear();
    return this.bridge.close();
  }

  private remember(sid: string, text: string): void {
    const now = Date.now();
    const e = this.loads.get(sid);
    if (e !== undefined && e.readers > 0 && now - e.at < LOAD_MEMORY_MS) {
      if (e.text !== text) e.ambiguous = true;
      e.readers++;
      e.at = now;
      return;
    }
    if (this.loads.size >= MAX_TRACKED) {
      // Oldest first (insertion order): those are the loads nobody saved.
      const first = this.loads.keys().next();
      if (!first.done) this.loads.delete(first.value);
    }
    this.loads.delete(sid);
    this.loads.set(sid, { text, readers: 1, ambiguous: false, at: now });
  }

  /** The text this write's request loaded, when it is known for sure. */
  private baseOf(sid: string): string | null | undefined {
    const e = this.loads.get(sid);
    if (e === undefined) return undefined;
    const base = e.ambiguous || Date.now() - e.at >= LOAD_MEMORY_MS ? undefined : e.text;
    if (--e.readers <= 0) this.loads.delete(sid);
    return base;
  }
}
