/**
 * A Hono app on Node (@hono/node-server) with azscale: signed cookie sessions on azscale
 * sessions (embedded, or Redis with REDIS_URL), RED metrics at /metrics and the probes.
 *
 *   npx tsx examples/hono-app/main.ts            # runs a short self-check and exits
 *   PORT=8080 npx tsx examples/hono-app/main.ts  # serves until SIGTERM
 *
 * In your project: import { ... } from 'azscale/hono'.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { healthRoutes, honoSession, requestMetrics } from '../../src/hono/index.js';
import { HealthRegistry, Metrics } from '../../src/observability/index.js';

type Env = { Variables: { session: Record<string, unknown> | null; sessionId: string } };

const metrics = new Metrics();
const health = new HealthRegistry({ metrics });
const sessions = honoSession({
  redis: process.env.REDIS_URL || undefined,
  secret: process.env.SESSION_SECRET ?? 'dev-only-secret-of-at-least-32-chars',
  secure: false, // plain http in this example; keep the default (true) behind TLS
  maxAge: 30 * 60,
});

const app = new Hono<Env>();
app.use(requestMetrics({ metrics }));
app.use(healthRoutes({ health }));
app.use(sessions);
app.get('/api/items/:id', (c) => {
  const s = c.get('session')!;
  const seen = ((s.seen as string[] | undefined) ?? []).concat(c.req.param('id'));
  s.seen = seen;
  return c.json({ id: c.req.param('id'), seen });
});
app.post('/logout', (c) => {
  c.set('session', null);
  return c.json({ ok: true });
});

const server = serve({
  fetch: app.fetch,
  port: Number(process.env.PORT ?? 0),
  hostname: '127.0.0.1',
});
await new Promise((r) => server.once('listening', r));
const address = server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
console.log(`listening on ${base}`);

const stop = async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await sessions.close();
};
process.once('SIGTERM', () => void stop());

if (!process.env.PORT) {
  let cookie = '';
  let seen: unknown[] = [];
  for (const id of ['a1', 'b2', 'c3']) {
    const r = await fetch(`${base}/api/items/${id}`, { headers: cookie ? { cookie } : {} });
    cookie = r.headers.getSetCookie()[0]?.split(';')[0] ?? cookie;
    seen = ((await r.json()) as { seen: unknown[] }).seen;
  }
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('azscale_http_requests_total{') && l.includes('/api/items/:id'));
  console.log(`session saw: ${seen.join(',')}`);
  console.log(`metrics: ${line}`);
  await stop();
  if (seen.length !== 3 || !line?.endsWith(' 3')) process.exitCode = 1;
}
