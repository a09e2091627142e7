import { EventEmitter } from 'node:events';
import {
  type FrameworkSession,
  type FrameworkSessionStoreOptions,
  SessionBridge,
} from '../frameworks/session-bridge.js';
import { requirePeer } from '../frameworks/peer.js';
import type { DistributedSessionManager } from '../session/manager.js';

/** Options of {@link ExpressSessionStore}. */
export type ExpressSessionStoreOptions = FrameworkSessionStoreOptions;

/**
 * Node-style callback express-session passes to a store. Typed loosely on purpose: the store
 * must be assignable to `@types/express-session`'s `Store` without this package importing it.
 */
// biome-ignore lint/suspicious/noExplicitAny: structural compatibility with @types/express-session
type Callback<_T = void> = (err?: any, value?: any) => void;

interface StoreProto {
  regenerate(this: unknown, req: unknown, fn: Callback): void;
  load(this: unknown, sid: string, fn: Callback<unknown>): void;
  createSession(this: unknown, req: unknown, sess: unknown): unknown;
}

// The text a session was loaded from, kept (not enumerable) on the object express-session gets,
// so a later set() can merge against it. Not enumerable: it never reaches the stored JSON.
const LOADED = Symbol('azscale.loadedText');

function run<T>(p: Promise<T>, cb: Callback<T> | undefined): void {
  p.then(
    (v) => cb?.(null, v),
    (e: unknown) => cb?.(e),
  );
}

/**
 * An express-session `Store` over a {@link DistributedSessionManager}: sessions live at
 * `prefix + sid` on the embedded store, Redis or a Redis Cluster, shared by every instance.
 *
 * - `new ExpressSessionStore({ sessions })`: a manager you own (never closed by the store);
 * - `new ExpressSessionStore({ redis, prefix, ttl })`: one it creates and closes in `close()`.
 *
 * The TTL of a write or `touch` comes from the cookie (`expires`/`maxAge`), else `ttl`. A write
 * merges top-level fields with what the request loaded, so a field changed meanwhile by another
 * request or by the manager's atomic helpers (`appendMessage`, `updateSession`) is not lost
 * unless this request changed it too. `all`, `length` and `clear` SCAN the prefix (every master
 * of a Cluster).
 *
 * @example
 * app.use(session({
 *   store: new ExpressSessionStore({ redis: process.env.REDIS_URL }),
 *   secret: process.env.SESSION_SECRET!, resave: false, saveUninitialized: false,
 * }));
 */
export class ExpressSessionStore extends EventEmitter {
  /** The manager the sessions go through. */
  readonly sessions: DistributedSessionManager;
  private readonly bridge: SessionBridge;
  private readonly base: StoreProto;

  constructor(options: ExpressSessionStoreOptions = {}) {
    super();
    // express-session's Store adds regenerate/load/createSession (which need its Cookie and
    // Session classes) to an EventEmitter; they are borrowed rather than inherited so that
    // importing azscale/express does not require express-session.
    this.base = requirePeer<{ Store: { prototype: StoreProto } }>(
      'express-session',
      'ExpressSessionStore',
    ).Store.prototype;
    this.bridge = new SessionBridge(options, 'ExpressSessionStore');
    this.sessions = this.bridge.sessions;
  }

  /** express-session's own: destroys and generates a new session. */
  regenerate(req: unknown, fn: Callback): void {
    this.base.regenerate.call(this, req, fn);
  }

  /** express-session's own: loads a session by id into a Session object. */
  load(sid: string, fn: Callback<unknown>): void {
    this.base.load.call(this, sid, fn);
  }

  /** express-session's own, plus keeping the loaded text on the new `req.session`. */
  // biome-ignore lint/suspicious/noExplicitAny: returns express-session's Session (its type is not imported)
  createSession(req: any, sess: any): any {
    const loaded = (sess as { [LOADED]?: string })[LOADED];
    const out = this.base.createSession.call(this, req, sess);
    if (loaded !== undefined && typeof req?.session === 'object' && req.session !== null) {
      Object.defineProperty(req.session, LOADED, { value: loaded, enumerable: false });
    }
    return out;
  }

  /** Loads a session (`undefined` when none). */
  get(sid: string, cb: Callback<FrameworkSession | null>): void {
    run(
      this.bridge.load(sid).then((text) => {
        const s = this.bridge.parse(text, sid);
        if (s !== null && text !== null) {
          Object.defineProperty(s, LOADED, { value: text, enumerable: false });
        }
        return s;
      }),
      cb,
    );
  }

  /** Stores a session with the TTL of its cookie. */
  // biome-ignore lint/suspicious/noExplicitAny: express-session's SessionData
  set(sid: string, session: any, cb?: Callback): void {
    const loaded = (session as { [LOADED]?: string })[LOADED];
    run(this.bridge.save(sid, session as FrameworkSession, loaded), cb);
  }

  /** Deletes a session. */
  destroy(sid: string, cb?: Callback): void {
    run(this.bridge.destroy(sid), cb);
  }

  /** Resets a session's expiry from its cookie (express-session calls it for `rolling`). */
  // biome-ignore lint/suspicious/noExplicitAny: express-session's SessionData
  touch(sid: string, session: any, cb?: Callback): void {
    run(this.bridge.touch(sid, session as FrameworkSession), cb);
  }

  /** Every session, by id. */
  all(cb: Callback<Record<string, FrameworkSession>>): void {
    run(this.bridge.all(), cb);
  }

  /** How many sessions are stored. */
  length(cb: Callback<number>): void {
    run(
      this.bridge.ids().then((ids) => ids.length),
      cb,
    );
  }

  /** Deletes every session under the prefix. */
  clear(cb?: Callback): void {
    run(this.bridge.clear(), cb);
  }

  /** Closes the manager if this store created it. Idempotent. */
  close(): Promise<void> {
    return this.bridge.close();
  }
}
