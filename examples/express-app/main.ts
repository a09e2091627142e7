/**
 * An Express app on azscale: cookie sessions in ExpressSessionStore (the embedded store, or
 * Redis with REDIS_URL, so every instance shares them), RED metrics at /metrics, the probes
 * /healthz /readyz /startupz, and a graceful drain on SIGTERM.
 *
 *   npx tsx examples/express-app/main.ts            # runs a short self-check and exits
 *   PORT=8080 npx tsx examples/express-app/main.ts  # serves until SIGTERM
 *
 * In your project: import { ... } from 'azscale/express' (and 'azscale/observability').
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import session from 'express-session';
import {
  ExpressSessionStore,
  gracefulShutdown,
  healthRoutes,
  requestMetrics,
} from '../../src/express/index.js';
import { HealthRegistry, Metrics, redisHealthCheck } from '../../src/observability/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
    visits?: number;
  }
}

const redis = process.env.REDIS_URL || undefined;
const metrics = new Metrics();
const health = new HealthRegistry({ metrics });
// One manager for the express-session store and for the atomic helpers the routes use.
const sessions = new DistributedSessionManager({ redis, prefix: 'sess:', metrics });
const store = new ExpressSessionStore({ sessions });
// Readiness pings Redis on its own connection (closed by the drain below).
const ping = redis
  ? new (await import('ioredis')).Redis(redis, { lazyConnect: true, maxRetriesPerRequest: 1 })
  : undefined;
if (ping) health.register('redis', redisHealthCheck(ping));

const app = express();
app.use(requestMetrics({ metrics }));
app.use(healthRoutes({ health }));
app.use(express.json());
app.use(
  session({
    store,
    secret: process.env.SESSION_SECRET ?? 'dev-only-secret-change-me',
    resave: false,
    saveUninitialized: false,
    rolling: true,
    cookie: { maxAge: 30 * 60_000, httpOnly: true, sameSite: 'lax' },
  }),
);

app.post('/login/:user', (req, res) => {
  req.session.user = req.params.user;
  req.session.visits = 0;
  res.json({ user: req.params.user });
});
app.get('/me', (req, res) => {
  if (!req.session.user) return void res.status(401).json({ error: 'not logged in' });
  req.session.visits = (req.session.visits ?? 0) + 1;
  res.json({ user: req.session.user, visits: req.session.visits });
});
// Concurrent chat turns of one session: appendMessage is atomic, so none is lost, and the
// session write at the end of the request keeps the messages (it merges field by field).
app.post('/api/chat/:turn', async (req, res) => {
  await sessions.appendMessage(req.sessionID, { role: 'user', content: req.params.turn });
  res.json({ ok: true });
});
app.get('/api/history', async (req, res) => {
  res.json((await sessions.getSession(req.sessionID)).messages);
});
app.post('/logout', (req, res) => {
  req.session.destroy(() => res.json({ ok: true }));
});

const server: Server = createServer(app);
const drain = gracefulShutdown(server, {
  health,
  closeables: [sessions, () => ping?.disconnect()],
  timeout: 20,
});
const port = Number(process.env.PORT ?? 0);
await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
console.log(`listening on ${base} (${redis ? 'Redis' : 'embedded'} sessions)`);

if (!process.env.PORT) {
  // Self-check: what a browser would do, then the numbers the HPA and the advisor read.
  const req = async (path: string, method = 'GET', cookie?: string) => {
    const r = await fetch(base + path, { method, headers: cookie ? { cookie } : {} });
    return { r, body: (await r.json()) as Record<string, unknown> };
  };
  const login = await req('/login/ada', 'POST');
  const cookie = login.r.headers.getSetCookie()[0]!.split(';')[0]!;
  await req('/me', 'GET', cookie);
  const me = await req('/me', 'GET', cookie);
  await Promise.all(Array.from({ length: 10 }, (_, i) => req(`/api/chat/${i}`, 'POST', cookie)));
  const history = (await (
    await fetch(`${base}/api/history`, { headers: { cookie } })
  ).json()) as unknown[];
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('azscale_http_requests_total{') && l.includes('/api/chat/:turn'));
  console.log(`session: ${JSON.stringify(me.body)}; chat turns kept: ${history.length}/10`);
  console.log(`metrics: ${line}`);
  console.log(`ready: ${(await fetch(`${base}/readyz`)).status}`);
  const report = await drain.shutdown();
  console.log(`drained in ${report.duration.toFixed(2)} s, timed out: ${report.timedOut}`);
  drain.dispose();
  if (me.body.visits !== 2 || history.length !== 10 || !line) process.exitCode = 1;
}
