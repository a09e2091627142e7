/**
 * azscalePlugin's RED recording on real Fastify apps over real HTTP: replies that never reach
 * the handler (a hook's early reply, a validation error, a thrown hook), hijacked replies,
 * injected requests, two apps in one process, HTTP/2 (the onResponse-hook path), and the
 * diagnostics-channel subscriptions dropped on close.
 */
import dc from 'node:diagnostics_channel';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { azscalePlugin } from '../../src/fastify/index.js';
import { Metrics } from '../../src/observability/index.js';
import { parsePrometheus, sampleValue } from '../observability/prom-parse.js';

async function counts(metrics: Metrics) {
  const fams = parsePrometheus(await metrics.prometheus());
  return (labels: Record<string, string>, name = 'azscale_http_requests_total') =>
    sampleValue(fams, name, labels);
}

describe('azscalePlugin RED recording', () => {
  it('counts replies that never reach the handler under the route template', async () => {
    const metrics = new Metrics();
    const app = Fastify();
    await app.register(azscalePlugin, { metrics });
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers.authorization !== 'yes') return reply.code(401).send({ error: 'no' });
    });
    app.get('/api/task/:id', async (req) => ({ id: (req.params as { id: string }).id }));
    app.post(
      '/api/task',
      {
        schema: {
          body: {
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string' } },
          },
        },
      },
      async () => ({ ok: true }),
    );
    app.get(
      '/broken/:id',
      { preHandler: async () => Promise.reject(new Error('hook failed')) },
      async () => 'never',
    );
    app.get('/raw/:id', (_req, reply) => {
      reply.hijack();
      reply.raw.writeHead(202, { 'content-type': 'text/plain' });
      reply.raw.end('raw');
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const auth = { authorization: 'yes' };
    try {
      expect((await fetch(`${url}/api/task/1`)).status).toBe(401);
      expect((await fetch(`${url}/api/task/2`, { headers: auth })).status).toBe(200);
      const bad = await fetch(`${url}/api/task`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ nope: 1 }),
      });
      expect(bad.status).toBe(400);
      expect((await fetch(`${url}/broken/7`, { headers: auth })).status).toBe(500);
      expect((await fetch(`${url}/raw/9`, { headers: auth })).status).toBe(202);
      expect((await fetch(`${url}/missing/5`, { headers: auth })).status).toBe(404);
      const v = await counts(metrics);
      expect(v({ route: '/api/task/:id', status: '401', method: 'GET' })).toBe(1);
      expect(v({ route: '/api/task/:id', status: '200', method: 'GET' })).toBe(1);
      expect(v({ route: '/api/task', status: '400', method: 'POST' })).toBe(1);
      expect(v({ route: '/broken/:id', status: '500', method: 'GET' })).toBe(1);
      expect(v({ route: '/broken/:id' }, 'azscale_http_errors_total')).toBe(1);
      expect(v({ route: '/raw/:id', status: '202', method: 'GET' })).toBe(1);
      expect(v({ route: 'unmatched', status: '404', method: 'GET' })).toBe(1);
      expect(
        v({ route: '/api/task/:id', status: '200' }, 'azscale_http_request_duration_seconds_count'),
      ).toBe(1);
      const text = await metrics.prometheus();
      expect(text).not.toContain('/api/task/1"');
      expect(text).not.toContain('missing');
    } finally {
      await app.close();
    }
  });

  it('counts fastify.inject() requests, and each app only its own requests', async () => {
    const a = new Metrics();
    const b = new Metrics();
    const appA = Fastify();
    const appB = Fastify();
    await appA.register(azscalePlugin, { metrics: a });
    await appB.register(azscalePlugin, { metrics: b });
    appA.get('/a/:id', async () => 'a');
    appB.get('/b/:id', async () => 'b');
    const urlA = await appA.listen({ port: 0, host: '127.0.0.1' });
    const urlB = await appB.listen({ port: 0, host: '127.0.0.1' });
    try {
      expect((await appA.inject({ method: 'GET', url: '/a/1' })).statusCode).toBe(200);
      for (let i = 0; i < 3; i++) expect((await fetch(`${urlA}/a/${i}`)).status).toBe(200);
      for (let i = 0; i < 2; i++) expect((await fetch(`${urlB}/b/${i}`)).status).toBe(200);
      expect((await fetch(`${urlB}/zzz`)).status).toBe(404);
      const va = await counts(a);
      const vb = await counts(b);
      expect(va({ route: '/a/:id', status: '200' })).toBe(4);
      expect(
        va({ route: '/a/:id', status: '200' }, 'azscale_http_request_duration_seconds_count'),
      ).toBe(4);
      expect(va({ route: 'unmatched' })).toBeUndefined();
      expect(vb({ route: '/b/:id', status: '200' })).toBe(2);
      expect(vb({ route: 'unmatched', status: '404' })).toBe(1);
      expect(vb({ route: '/a/:id' })).toBeUndefined();
    } finally {
      await appA.close();
      await appB.close();
    }
    // Closed apps leave no subscriber behind on Node's http channels.
    expect(dc.hasSubscribers('http.server.request.start')).toBe(false);
    expect(dc.hasSubscribers('http.server.response.finish')).toBe(false);
  });

  it('counts under route templates on an HTTP/2 server (onResponse hooks)', async () => {
    const metrics = new Metrics();
    const app = Fastify({ http2: true });
    await app.register(azscalePlugin, { metrics });
    app.get('/h2/:id', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    const client = http2.connect(`http://127.0.0.1:${port}`);
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = client.request({ ':path': path });
        let status = 0;
        req.on('response', (h) => {
          status = Number(h[':status']);
        });
        req.on('error', reject);
        req.resume();
        req.on('end', () => resolve(status));
        req.end();
      });
    try {
      expect(await get('/h2/1')).toBe(200);
      expect(await get('/h2/2')).toBe(200);
      expect(await get('/nothing')).toBe(404);
      const v = await counts(metrics);
      expect(v({ route: '/h2/:id', status: '200' })).toBe(2);
      expect(v({ route: 'unmatched', status: '404' })).toBe(1);
    } finally {
      client.close();
      await app.close();
    }
  });
});
