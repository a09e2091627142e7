import { createHmac, timingSafeEqual } from 'node:crypto';
import { ValidationError, describeValue } from '../core/errors.js';
import { assertDuration } from '../core/timers.js';
import {
  type FrameworkSession,
  type FrameworkSessionStoreOptions,
  SessionBridge,
} from '../frameworks/session-bridge.js';
import { newSessionId } from '../session/manager.js';
import type { HonoContextLike, HonoMiddleware } from './types.js';

/** Options of {@link honoSession}. */
export interface HonoSessionOptions extends FrameworkSessionStoreOptions {
  /** Secret the session id cookie is signed with (HMAC-SHA256), at least 32 characters. */
  secret: string;
  /** Cookie name. @default 'sid' */
  cookieName?: string;
  /** Cookie and session lifetime in seconds. @default the store's ttl (86400 unless `sessions` says otherwise) */
  maxAge?: number;
  /** `Secure` cookie attribute. @default true */
  secure?: boolean;
  /** `SameSite` cookie attribute. @default 'Lax' */
  sameSite?: 'Strict' | 'Lax' | 'None';
  /** Cookie path. @default '/' */
  path?: string;
  /** Reset the expiry (and re-send the cookie) on every request, not only on changes. @default false */
  rolling?: boolean;
}

/** The middleware, with the store it owns. */
export type HonoSessionMiddleware = HonoMiddleware & {
  /** Closes the manager if the middleware created it. */
  close(): Promise<void>;
};

function sign(sid: string, secret: string): string {
  return `${sid}.${createHmac('sha256', secret).update(sid).digest('base64url')}`;
}

function unsign(value: string, secret: string): string | undefined {
  const dot = value.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const sid = value.slice(0, dot);
  const a = Buffer.from(sign(sid, secret));
  const b = Buffer.from(value);
  return a.length === b.length && timingSafeEqual(a, b) ? sid : undefined;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * Cookie sessions for Hono on azscale sessions (embedded, Redis or Cluster), shared by every
 * instance. The session is a plain object at `c.get('session')` (its id at `c.get('sessionId')`);
 * change it and it is saved when the handler is done (merged field by field with what other
 * requests wrote meanwhile); `c.set('session', null)` destroys it. The id cookie is signed.
 *
 * @example
 * app.use(honoSession({ redis: process.env.REDIS_URL, secret: process.env.SESSION_SECRET! }));
 * app.get('/', (c) => { const s = c.get('session'); s.views = (s.views ?? 0) + 1; return c.json(s); });
 */
export function honoSession(options: HonoSessionOptions): HonoSessionMiddleware {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
      option: 'options',
    });
  }
  const {
    secret,
    cookieName = 'sid',
    maxAge,
    secure = true,
    sameSite = 'Lax',
    path = '/',
    rolling = false,
    ...store
  } = options;
  if (typeof secret !== 'string' || secret.length < 32) {
    throw new ValidationError('secret must be a string of at least 32 characters', {
      option: 'secret',
    });
  }
  if (typeof cookieName !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(cookieName)) {
    throw new ValidationError(
      `cookieName must be a cookie token, received ${describeValue(cookieName)}`,
      {
        option: 'cookieName',
      },
    );
  }
  if (!['Strict', 'Lax', 'None'].includes(sameSite)) {
    throw new ValidationError(
      `sameSite must be Strict, Lax or None, received ${describeValue(sameSite)}`,
      {
        option: 'sameSite',
      },
    );
  }
  const bridge = new SessionBridge(store, 'honoSession');
  const ageS =
    maxAge === undefined ? bridge.sessions.ttl : assertDuration(maxAge, 'maxAge (seconds)');
  const cookieOf = (value: string, age: number) =>
    `${cookieName}=${encodeURIComponent(value)}; Path=${path}; Max-Age=${Math.round(age)}; HttpOnly; SameSite=${sameSite}${secure ? '; Secure' : ''}`;
  const withCookie = (s: FrameworkSession): FrameworkSession => ({
    ...s,
    cookie: { maxAge: ageS * 1000, expires: new Date(Date.now() + ageS * 1000).toISOString() },
  });

  const mw = async (
    c: HonoContextLike,
    next: () => Promise<void>,
  ): Promise<Response | undefined> => {
    const raw = readCookie(c.req.header('cookie'), cookieName);
    let sid = raw === undefined ? undefined : unsign(raw, secret);
    let loaded: string | null = null;
    let data: FrameworkSession | null = null;
    if (sid !== undefined) {
      loaded = await bridge.load(sid);
      data = bridge.parse(loaded, sid);
      if (data === null) sid = undefined;
    }
    const isNew = sid === undefined;
    const id = sid ?? newSessionId();
    const session: FrameworkSession = data ? { ...data } : {};
    delete session.cookie;
    const before = JSON.stringify(session);
    c.set('session', session);
    c.set('sessionId', id);
    await next();
    const after = c.get('session');
    if (after === null) {
      if (!isNew) await bridge.destroy(id);
      c.header('set-cookie', cookieOf('', 0), { append: true });
      return undefined;
    }
    if (typeof after !== 'object' || after === undefined || Array.isArray(after)) {
      throw new ValidationError(
        `c.get('session') must be an object or null, received ${describeValue(after)}`,
        {
          option: 'session',
        },
      );
    }
    const changed = JSON.stringify(after) !== before;
    if (changed) {
      await bridge.save(id, withCookie(after as FrameworkSession), isNew ? null : loaded);
    } else if (rolling && !isNew) {
      await bridge.touch(id, withCookie(after as FrameworkSession));
    }
    if (changed || (rolling && !isNew))
      c.header('set-cookie', cookieOf(sign(id, secret), ageS), { append: true });
    return undefined;
  };
  return Object.assign(mw, { close: () => bridge.close() });
}
