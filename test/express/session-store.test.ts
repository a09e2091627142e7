/**
 * ExpressSessionStore with real express-session apps over real HTTP: a cookie session made by
 * one app instance is read by another through Redis (standalone and Cluster); rolling touches
 * reset the TTL; destroy removes it; all/length/clear list what is stored; concurrent requests
 * that use the manager's atomic helpers lose no update.
 */
import { type Server, createServer } from 'node:http';
import express from 'express';
import session from 'express-session';
import { afterAll, describe, expect, it } from 'vitest';
import { ExpressSessionStore } from '../../src/express/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { call, close, listen } from './helpers.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    views?: number;
    note?: string;
  }
}

interface App {
  url: string;
  server: Server;
  store: ExpressSessionStore;
}

async function makeApp(
  store: ExpressSessionStore,
  opts: { rolling?: boolean; resave?: boolean; maxAge?: number } = {},
): Promise<App> {
  const app = express();
  app.use(
    session({
      store,
      secret: 'test-secret',
      resave: opts.resave ?? false,
      saveUninitialized: false,
      rolling: opts.rolling ?? false,
      cookie: { maxAge: opts.maxAge ?? 60_000 },
    }),
  );
  app.post('/login/:user', (req, res) => {
    req.session.user = req.params.user;
    req.session.views = 0;
    res.json({ ok: true });
  });
  app.get('/me', (req, res) => {
    if (req.session.user === undefined) return void res.status(401).json({ user: null });
    req.session.views = (req.session.views ?? 0) + 1;
    res.json({ user: req.session.user, views: req.session.views, sid: req.sessionID });
  });
  app.get('/peek', (req, res) => {
    res.json({ user: req.session.user ?? null, sid: req.sessionID });
  });
  app.post('/note/:text', (req, res) => {
    req.session.note = req.params.text;
    res.json({ ok: true });
  });
  app.post('/append/:n', async (req, res) => {
    await store.sessions.appendMessage(req.sessionID, { role: 'user', content: req.params.n });
    res.json({ ok: true });
  });
  app.post('/logout', (req, res) => {
    req.session.destroy(() => res.json({ ok: true }));
  });
  const server = createServer(app);
  const url = await listen(server);
  return { url, server, store };
}

const targets = [
  { name: 'standalone', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(targets)('ExpressSessionStore on Redis $name', ({ redis }) => {
  const apps: App[] = [];
  afterAll(async () => {
    for (const a of apps) {
      await close(a.server);
      await a.store.close();
    }
  });

  it('keeps a cookie session across two app instances, then destroys it', async () => {
    const prefix = uniquePrefix('exs');
    const a = await makeApp(new ExpressSessionStore({ redis: redis(), prefix }));
    const b = await makeApp(new ExpressSessionStore({ redis: redis(), prefix }));
    apps.push(a, b);
    const { cookie } = await call(`${a.url}/login/ada`, { method: 'POST' });
    expect(cookie).toBeDefined();
    const onB = await call(`${b.url}/me`, { headers: { cookie: cookie! } });
    expect(onB.body).toMatchObject({ user: 'ada', views: 1 });
    const onA = await call(`${a.url}/me`, { headers: { cookie: cookie! } });
    expect(onA.body).toMatchObject({ user: 'ada', views: 2 });

    expect(await new Promise((r) => b.store.length((_e, n) => r(n)))).toBe(1);
    const all = await new Promise<Record<string, { user?: string }>>((r) =>
      b.store.all((_e, v) => r(v!)),
    );
    expect(Object.values(all).map((s) => s.user)).toEqual(['ada']);

    await call(`${b.url}/logout`, { method: 'POST', headers: { cookie: cookie! } });
    const after = await call(`${a.url}/me`, { headers: { cookie: cookie! } });
    expect(after.status).toBe(401);
    expect(await new Promise((r) => a.store.length((_e, n) => r(n)))).toBe(0);
  });

  it('takes the TTL from the cookie and rolling requests touch it', async () => {
    const prefix = uniquePrefix('exr');
    const sessions = new DistributedSessionManager({ redis: redis(), prefix, ttl: 3600 });
    const store = new ExpressSessionStore({ sessions });
    const a = await makeApp(store, { rolling: true, maxAge: 20_000 });
    apps.push(a);
    const cookie = (await call(`${a.url}/login/bob`, { method: 'POST' })).cookie!;
    const sid = ((await call(`${a.url}/peek`, { headers: { cookie } })).body as { sid: string })
      .sid;
    const first = await sessions.remainingTtl(sid);
    expect(first).toBeGreaterThan(0);
    // The cookie's maxAge (20 s), not the manager's one hour.
    expect(first).toBeLessThanOrEqual(20);
    await sessions.store.expire(sessions.prefix + sid, 5_000);
    expect(await sessions.remainingTtl(sid)).toBeLessThanOrEqual(5);
    // /peek modifies nothing: express-session calls touch() on a rolling session.
    const peek = await call(`${a.url}/peek`, { headers: { cookie } });
    expect(peek.cookie).toBeDefined();
    expect(await sessions.remainingTtl(sid)).toBeGreaterThan(10);
    await sessions.close();
  });

  it('loses no update when requests use the atomic helpers next to resave', async () => {
    const prefix = uniquePrefix('exc');
    const a = await makeApp(new ExpressSessionStore({ redis: redis(), prefix }), { resave: true });
    const b = await makeApp(new ExpressSessionStore({ redis: redis(), prefix }), { resave: true });
    apps.push(a, b);
    const cookie = (await call(`${a.url}/login/cy`, { method: 'POST' })).cookie!;
    const n = 30;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        call(`${(i % 2 ? a : b).url}/${i % 3 === 0 ? `note/n${i}` : `append/${i}`}`, {
          method: 'POST',
          headers: { cookie },
        }).then((r) => expect(r.status).toBe(200)),
      ),
    );
    const sid = ((await call(`${a.url}/peek`, { headers: { cookie } })).body as { sid: string })
      .sid;
    const s = await a.store.sessions.getSession(sid);
    const appended = s.messages.map((m) => Number(m.content)).sort((x, y) => x - y);
    const expected = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0);
    expect(appended).toEqual(expected);
    expect(s.user).toBe('cy');
    expect(String(s.note)).toMatch(/^n\d+$/);
  });

  it('clear() removes every session under the prefix only', async () => {
    const prefix = uniquePrefix('exclr');
    const other = uniquePrefix('exoth');
    const store = new ExpressSessionStore({ redis: redis(), prefix });
    const keep = new ExpressSessionStore({ redis: redis(), prefix: other });
    const a = await makeApp(store);
    const k = await makeApp(keep);
    apps.push(a, k);
    for (const u of ['u1', 'u2', 'u3']) await call(`${a.url}/login/${u}`, { method: 'POST' });
    await call(`${k.url}/login/z`, { method: 'POST' });
    expect(await new Promise((r) => store.length((_e, n) => r(n)))).toBe(3);
    await new Promise<void>((r, j) => store.clear((e) => (e ? j(e) : r())));
    expect(await new Promise((r) => store.length((_e, n) => r(n)))).toBe(0);
    expect(await new Promise((r) => keep.length((_e, n) => r(n)))).toBe(1);
  });
});

describe('ExpressSessionStore validation and memory', () => {
  it('rejects bad options with ValidationError naming them', () => {
    expect(() => new ExpressSessionStore({ sessions: {} as never })).toThrow(/sessions/);
    const sessions = new DistributedSessionManager();
    expect(() => new ExpressSessionStore({ sessions, prefix: 'x:' })).toThrow(/prefix/);
    expect(() => new ExpressSessionStore({ ttl: Number.NaN })).toThrow(/ttl/);
    expect(() => new ExpressSessionStore({ ttl: -1 })).toThrow(/ttl/);
    void sessions.close();
  });

  it('a malformed or prototype-named session id is refused, not looked up', async () => {
    const store = new ExpressSessionStore();
    const err = await new Promise((r) => store.get('', (e) => r(e)));
    expect((err as { code?: string }).code).toBe('AZS_VALIDATION');
    const proto = await new Promise((r) => store.get('__proto__', (e, v) => r([e, v])));
    expect(proto).toEqual([null, null]);
    await store.close();
  });

  it('lists and clears sessions on the embedded store', async () => {
    const store = new ExpressSessionStore();
    const a = await makeApp(store);
    for (const u of ['m1', 'm2']) await call(`${a.url}/login/${u}`, { method: 'POST' });
    expect(await new Promise((r) => store.length((_e, n) => r(n)))).toBe(2);
    await new Promise<void>((r) => store.clear(() => r()));
    expect(await new Promise((r) => store.length((_e, n) => r(n)))).toBe(0);
    await close(a.server);
    await store.close();
  });
});
