/**
 * azscalePlugin on a real Fastify app over real HTTP: RED metrics under route templates in
 * /metrics, the probes, `fastify.azscale`, readiness failing while closing, and every primitive
 * closed in onClose.
 */
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { azscalePlugin } from '../../src/fastify/index.js';
import { HealthRegistry, Metrics } from '../../src/observability/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { parsePrometheus, sampleValue } from '../observability/prom-parse.js';
import { servers, uniquePrefix } from '../harness/env.js';

describe('azscalePlugin', () => {
  it('counts requests under route templates and serves /metrics', async () => {
    const metrics = new Metrics();
    const app = Fastify();
    await app.register(azscalePlugin, { metrics });
    app.get<{ Params: { id: string } }>('/api/task/:id', async (req) => ({ id: req.params.id }));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      for (const id of ['123', '456'])
        expect((await fetch(`${url}/api/task/${id}`)).status).toBe(200);
      expect((await fetch(`${url}/boom`)).status).toBe(500);
      expect((await fetch(`${url}/nothing/here/77aa`)).status).toBe(404);
      const res = await fetch(`${url}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const text = await res.text();
      expect(text).not.toContain('/api/task/123');
      expect(text).not.toContain('77aa');
      const fams = parsePrometheus(text);
      const v = (name: string, labels: Record<string, string>) => sampleValue(fams, name, labels);
      expect(
        v('azscale_http_requests_total', { route: '/api/task/:id', status: '200', method: 'GET' }),
      ).toBe(2);
      expect(v('azscale_http_requests_total', { route: '/boom', status: '500' })).toBe(1);
      expect(v('azscale_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
      expect(v('azscale_http_errors_total', { route: '/boom' })).toBe(1);
      expect(v('azscale_http_request_duration_seconds_count', { route: '/api/task/:id' })).toBe(2);
      expect(
        fams.get('azscale_http_requests_total')!.samples.some((s) => s.labels.route === '/metrics'),
      ).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('decorates fastify.azscale, answers the probes, fails readiness while closing and closes everything', async () => {
    const redis = servers().redisUrl;
    const health = new HealthRegistry();
    const sessions = new DistributedSessionManager({ redis, prefix: uniquePrefix('fps') });
    const cache = new DistributedCache({ redis, prefix: uniquePrefix('fpc'), backendTimeout: 10 });
    const queue = new TaskQueue({ name: uniquePrefix('fpq').slice(0, -1), redis });
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let taskStarted: () => void = () => {};
    const taskRunning = new Promise<void>((r) => {
      taskStarted = r;
    });
    const worker = new BackgroundWorker({
      queue,
      handler: async () => {
        taskStarted();
        return gate;
      },
    });
    const app = Fastify({ return503OnClosing: false });
    await app.register(azscalePlugin, {
      metrics: new Metrics(),
      health,
      sessions,
      cache,
      queue,
      worker,
    });
    let readyDuringClose: boolean | undefined;
    let slowEntered: () => void = () => {};
    const slowInFlight = new Promise<void>((r) => {
      slowEntered = r;
    });
    app.get('/slow', async () => {
      slowEntered();
      await new Promise((r) => setTimeout(r, 300));
      readyDuringClose = (await health.readiness()).ok;
      return { ok: true };
    });
    expect(app.azscale.cache).toBe(cache);
    expect(app.azscale.sessions).toBe(sessions);
    expect(app.azscale.draining).toBe(false);
    await worker.start();
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect((await fetch(`${url}/startupz`)).status).toBe(200);

    const taskId = await queue.submitTask({ n: 1 });
    // Close only once the task runs and the request is in its handler (not after fixed sleeps,
    // which a loaded machine outlasts).
    await taskRunning;
    const slow = fetch(`${url}/slow`);
    await slowInFlight;
    const closing = app.close();
    // The in-flight request finishes, and it saw readiness down.
    const res = await slow;
    expect(app.azscale.draining).toBe(true);
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
    expect(readyDuringClose).toBe(false);
    // The running task finishes before the worker stops.
    setTimeout(release, 200);
    await closing;
    const check = new TaskQueue({ name: queue.name, redis });
    expect((await check.getTask(taskId))?.status).toBe('completed');
    await check.close();
    // Everything was closed.
    expect(queue.isClosed).toBe(true);
    await expect(cache.get('x')).rejects.toMatchObject({ code: 'AZS_CLOSED' });
    await expect(sessions.getSession('x')).rejects.toMatchObject({ code: 'AZS_CLOSED' });
  });

  it('rejects bad options by name', async () => {
    const app = Fastify();
    await expect(app.register(azscalePlugin, { metrics: {} as never })).rejects.toThrow(/metrics/);
    const app2 = Fastify();
    await expect(app2.register(azscalePlugin, { metricsPath: 'x' as never })).rejects.toThrow(
      /metricsPath/,
    );
  });
});
