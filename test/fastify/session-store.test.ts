/**
 * FastifySessionStore with real @fastify/session apps over real HTTP: a cookie session made by
 * one instance is read by another through Redis (standalone and Cluster); rolling saves reset
 * the TTL; destroy removes it; concurrent requests using the manager's atomic helpers lose no
 * update.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { FastifySessionStore } from '../../src/fastify/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { call } from '../express/helpers.js';

declare module 'fastify' {
  interface Session {
    user?: string;
    views?: number;
    note?: string;
  }
}

const SECRET = 'a-secret-with-at-least-32-characters!';

async function makeApp(
  store: FastifySessionStore,
  opts: { rolling?: boolean; maxAge?: number } = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: SECRET,
    store,
    rolling: opts.rolling ?? false,
    saveUninitialized: false,
    cookie: { secure: false, maxAge: opts.maxAge ?? 60_000 },
  });
  app.post<{ Params: { user: string } }>('/login/:user', async (req) => {
    req.session.user = req.params.user;
    req.session.views = 0;
    return { ok: true };
  });
  app.get('/me', async (req, reply) => {
    if (req.session.user === undefined) return reply.code(401).send({ user: null });
    req.session.views = (req.session.views ?? 0) + 1;
    return { user: req.session.user, views: req.session.views, sid: req.session.sessionId };
  });
  app.get('/peek', async (req) => ({ user: req.session.user ?? null, sid: req.session.sessionId }));
  app.post<{ Params: { text: string } }>('/note/:text', async (req) => {
    req.session.note = req.params.text;
    return { ok: true };
  });
  app.post<{ Params: { n: string } }>('/append/:n', async (req) => {
    await store.sessions.appendMessage(req.session.sessionId, {
      role: 'user',
      content: req.params.n,
    });
    return { ok: true };
  });
  app.post('/logout', async (req) => {
    await req.session.destroy();
    return { ok: true };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url };
}

const targets = [
  { name: 'standalone', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(targets)('FastifySessionStore on Redis $name', ({ redis }) => {
  const apps: FastifyInstance[] = [];
  const stores: FastifySessionStore[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const s of stores) await s.close();
  });
  const store = (o: ConstructorParameters<typeof FastifySessionStore>[0]) => {
    const s = new FastifySessionStore(o);
    stores.push(s);
    return s;
  };

  it('keeps a cookie session across two app instances, then destroys it', async () => {
    const prefix = uniquePrefix('fss');
    const sa = store({ redis: redis(), prefix });
    const a = await makeApp(sa);
    const b = await makeApp(store({ redis: redis(), prefix }));
    apps.push(a.app, b.app);
    const { cookie } = await call(`${a.url}/login/ada`, { method: 'POST' });
    expect(cookie).toMatch(/^sessionId=/);
    expect((await call(`${b.url}/me`, { headers: { cookie: cookie! } })).body).toMatchObject({
      user: 'ada',
      views: 1,
    });
    expect((await call(`${a.url}/me`, { headers: { cookie: cookie! } })).body).toMatchObject({
      user: 'ada',
      views: 2,
    });
    expect(await sa.length()).toBe(1);
    await call(`${b.url}/logout`, { method: 'POST', headers: { cookie: cookie! } });
    expect((await call(`${a.url}/me`, { headers: { cookie: cookie! } })).status).toBe(401);
    expect(await sa.length()).toBe(0);
  });

  it('rolling saves reset the TTL taken from the cookie', async () => {
    const prefix = uniquePrefix('fsr');
    const sessions = new DistributedSessionManager({ redis: redis(), prefix, ttl: 3600 });
    const a = await makeApp(store({ sessions }), { rolling: true, maxAge: 20_000 });
    apps.push(a.app);
    const { cookie } = await call(`${a.url}/login/bob`, { method: 'POST' });
    const sid = (
      (await call(`${a.url}/peek`, { headers: { cookie: cookie! } })).body as { sid: string }
    ).sid;
    const first = await sessions.remainingTtl(sid);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(20);
    await sessions.store.expire(sessions.prefix + sid, 5_000);
    await call(`${a.url}/peek`, { headers: { cookie: cookie! } });
    expect(await sessions.remainingTtl(sid)).toBeGreaterThan(10);
    await sessions.close();
  });

  it('loses no update when requests use the atomic helpers next to session writes', async () => {
    const prefix = uniquePrefix('fsc');
    const sa = store({ redis: redis(), prefix });
    const a = await makeApp(sa, { rolling: true });
    const b = await makeApp(store({ redis: redis(), prefix }), { rolling: true });
    apps.push(a.app, b.app);
    const { cookie } = await call(`${a.url}/login/cy`, { method: 'POST' });
    const n = 30;
    // Sequential per instance, the two instances in parallel: each write has a known base.
    await Promise.all(
      [a, b].map(async (app, k) => {
        for (let i = k; i < n; i += 2) {
          const path = i % 3 === 0 ? `note/n${i}` : `append/${i}`;
          const r = await call(`${app.url}/${path}`, {
            method: 'POST',
            headers: { cookie: cookie! },
          });
          expect(r.status).toBe(200);
        }
      }),
    );
    const sid = (
      (await call(`${a.url}/peek`, { headers: { cookie: cookie! } })).body as { sid: string }
    ).sid;
    const s = await sa.sessions.getSession(sid);
    const appended = s.messages.map((m) => Number(m.content)).sort((x, y) => x - y);
    expect(appended).toEqual(Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0));
    expect(s.user).toBe('cy');
  });
});
