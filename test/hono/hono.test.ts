/**
 * The Hono adapter on a real Hono app served by @hono/node-server over real HTTP: RED metrics
 * under route templates, health routes, and cookie sessions shared by two instances through
 * Redis (and destroyed by setting the session to null).
 */
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { healthRoutes, honoSession, requestMetrics } from '../../src/hono/index.js';
import { HealthRegistry, Metrics } from '../../src/observability/index.js';
import { parsePrometheus, sampleValue } from '../observability/prom-parse.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { call } from '../express/helpers.js';

type Env = { Variables: { session: Record<string, unknown> | null; sessionId: string } };

const open: ServerType[] = [];
afterAll(async () => {
  for (const s of open) {
    await new Promise<void>((r) => s.close(() => r()));
  }
});

function start(app: Hono<Env>): Promise<string> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolve(`http://127.0.0.1:${info.port}`);
    });
    open.push(server);
  });
}

describe('azscale/hono', () => {
  it('records RED metrics under route templates and answers the probes', async () => {
    const metrics = new Metrics();
    const health = new HealthRegistry();
    let up = true;
    health.register('dep', () => up);
    const app = new Hono<Env>();
    app.use(requestMetrics({ metrics }));
    app.use(healthRoutes({ health }));
    app.onError((_e, c) => c.json({ error: 'internal' }, 500));
    app.get('/api/task/:id', (c) => c.json({ id: c.req.param('id') }));
    app.post('/api/fail', () => {
      throw new Error('boom');
    });
    const url = await start(app);
    for (const id of ['123', '456', '789'])
      expect((await call(`${url}/api/task/${id}`)).status).toBe(200);
    expect((await call(`${url}/api/fail`, { method: 'POST' })).status).toBe(500);
    expect((await call(`${url}/zz/none-5c1`)).status).toBe(404);
    expect((await call(`${url}/readyz`)).status).toBe(200);
    up = false;
    expect((await call(`${url}/readyz`)).status).toBe(503);
    expect((await call(`${url}/healthz`)).status).toBe(200);
    const text = (await call(`${url}/metrics`)).body as string;
    expect(text).not.toContain('/api/task/123');
    expect(text).not.toContain('5c1');
    const fams = parsePrometheus(text);
    expect(
      sampleValue(fams, 'azscale_http_requests_total', {
        route: '/api/task/:id',
        status: '200',
        method: 'GET',
      }),
    ).toBe(3);
    expect(
      sampleValue(fams, 'azscale_http_requests_total', {
        route: '/api/fail',
        status: '500',
        method: 'POST',
      }),
    ).toBe(1);
    expect(
      sampleValue(fams, 'azscale_http_requests_total', { route: 'unmatched', status: '404' }),
    ).toBe(1);
    expect(sampleValue(fams, 'azscale_http_errors_total', { route: '/api/fail' })).toBe(1);
    expect(sampleValue(fams, 'azscale_http_requests_total', { route: '/readyz' })).toBeUndefined();
  });

  it('keeps a cookie session across two instances through Redis, and destroys it', async () => {
    const prefix = uniquePrefix('hono');
    const secret = 'another-secret-of-32-characters-or-more';
    const mk = async () => {
      const mw = honoSession({
        redis: servers().redisUrl,
        prefix,
        secret,
        secure: false,
        maxAge: 60,
      });
      const app = new Hono<Env>();
      app.use(mw);
      app.post('/login/:user', (c) => {
        c.get('session')!.user = c.req.param('user');
        return c.json({ ok: true });
      });
      app.get('/me', (c) => {
        const s = c.get('session')!;
        if (s.user === undefined) return c.json({ user: null }, 401);
        s.views = ((s.views as number | undefined) ?? 0) + 1;
        return c.json({ user: s.user, views: s.views });
      });
      app.post('/logout', (c) => {
        c.set('session', null);
        return c.json({ ok: true });
      });
      return { url: await start(app), mw };
    };
    const a = await mk();
    const b = await mk();
    try {
      const { cookie } = await call(`${a.url}/login/ada`, { method: 'POST' });
      expect(cookie).toMatch(/^sid=/);
      expect((await call(`${b.url}/me`, { headers: { cookie: cookie! } })).body).toEqual({
        user: 'ada',
        views: 1,
      });
      expect((await call(`${a.url}/me`, { headers: { cookie: cookie! } })).body).toEqual({
        user: 'ada',
        views: 2,
      });
      // A tampered cookie is a new, empty session.
      const forged = cookie!.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'));
      expect((await call(`${a.url}/me`, { headers: { cookie: forged } })).status).toBe(401);
      await call(`${b.url}/logout`, { method: 'POST', headers: { cookie: cookie! } });
      expect((await call(`${a.url}/me`, { headers: { cookie: cookie! } })).status).toBe(401);
    } finally {
      await a.mw.close();
      await b.mw.close();
    }
  });

  it('validates its options', () => {
    expect(() => honoSession({ secret: 'short' })).toThrow(/secret/);
    expect(() => requestMetrics({ metrics: null as never })).toThrow(/metrics/);
  });
});
