/**
 * requestMetrics and healthRoutes on a real Express app over real HTTP: RED metrics appear in
 * /metrics under route templates (never raw URLs), and the probes answer from a HealthRegistry.
 */
import { createServer } from 'node:http';
import express from 'express';
import { afterAll, describe, expect, it } from 'vitest';
import { gracefulShutdown, healthRoutes, requestMetrics } from '../../src/express/index.js';
import { HealthRegistry, Metrics } from '../../src/observability/index.js';
import { parsePrometheus, sampleValue } from '../observability/prom-parse.js';
import { call, close, listen } from './helpers.js';

describe('requestMetrics (Express)', () => {
  const metrics = new Metrics();
  const app = express();
  app.use(requestMetrics({ metrics }));
  app.get('/api/task/:id', (req, res) => {
    res.json({ id: req.params.id });
  });
  const router = express.Router();
  router.get('/items/:item', (_req, res) => {
    res.status(503).json({ down: true });
  });
  app.use('/v2', router);
  const server = createServer(app);
  afterAll(() => close(server));

  it('counts requests under their route template, with status and a duration histogram', async () => {
    const url = await listen(server);
    for (const id of ['123', '456', '789']) {
      expect((await call(`${url}/api/task/${id}`)).status).toBe(200);
    }
    expect((await call(`${url}/v2/items/abc`)).status).toBe(503);
    expect((await call(`${url}/no/such/path/9f8e`)).status).toBe(404);
    const m = await call(`${url}/metrics`);
    expect(m.status).toBe(200);
    const text = m.body as string;
    expect(text).not.toContain('/api/task/123');
    expect(text).not.toContain('9f8e');
    const fams = parsePrometheus(text);
    const requests = fams.get('azscale_http_requests_total')!;
    const get = (labels: Record<string, string>) =>
      requests.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    expect(get({ method: 'GET', route: '/api/task/:id', status: '200' })).toBe(3);
    expect(get({ method: 'GET', route: '/v2/items/:item', status: '503' })).toBe(1);
    expect(get({ method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    // The scrape itself is not counted.
    expect(requests.samples.some((s) => s.labels.route === '/metrics')).toBe(false);
    const hist = fams.get('azscale_http_request_duration_seconds')!;
    expect(hist.type).toBe('histogram');
    expect(
      sampleValue(fams, 'azscale_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/api/task/:id',
        status: '200',
      }),
    ).toBe(3);
    expect(
      sampleValue(fams, 'azscale_http_errors_total', { method: 'GET', route: '/v2/items/:item' }),
    ).toBe(1);
    // The snapshot the ScalingAdvisor reads sees the same requests.
    const snap = metrics.snapshot();
    expect(snap.requestRate).toBeGreaterThan(0);
  });

  it('rejects a missing or wrong metrics sink', () => {
    expect(() => requestMetrics({} as never)).toThrow(/metrics/);
    expect(() => requestMetrics({ metrics: new Metrics(), path: 'metrics' })).toThrow(/path/);
    expect(() => requestMetrics({ metrics: new Metrics(), exclude: '/x' as never })).toThrow(
      /exclude/,
    );
  });
});

describe('healthRoutes (Express)', () => {
  it('answers /healthz, /readyz and /startupz from the registry; readiness fails while draining', async () => {
    const health = new HealthRegistry();
    let redisUp = false;
    health.register('redis', () => redisUp);
    const app = express();
    app.use(healthRoutes({ health }));
    app.get('/other', (_req, res) => {
      res.send('ok');
    });
    const server = createServer(app);
    const url = await listen(server);
    const drain = gracefulShutdown(server, { health, signals: false });
    try {
      expect((await call(`${url}/healthz`)).status).toBe(200);
      const notReady = await call(`${url}/readyz`);
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({
        status: 'down',
        checks: { redis: { status: 'down' } },
      });
      expect((await call(`${url}/startupz`)).status).toBe(503);
      redisUp = true;
      expect((await call(`${url}/readyz`)).status).toBe(200);
      expect((await call(`${url}/startupz`)).status).toBe(200);
      // Started stays started: the startup probe latches.
      redisUp = false;
      expect((await call(`${url}/startupz`)).status).toBe(200);
      redisUp = true;
      expect((await call(`${url}/other`)).body).toBe('ok');
      const report = drain.shutdown();
      expect(drain.draining).toBe(true);
      expect((await health.readiness()).ok).toBe(false);
      expect((await report).timedOut).toBe(false);
    } finally {
      drain.dispose();
      await close(server);
    }
  });

  it('validates its options', () => {
    expect(() => healthRoutes({} as never)).toThrow(/health/);
    expect(() => healthRoutes({ health: new HealthRegistry(), readinessPath: 'x' })).toThrow(
      /readinessPath/,
    );
  });
});
