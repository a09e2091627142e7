/**
 * Mounting on Express and Fastify over real HTTP (reads and an authorised action), the assets'
 * size and freshness, queue actions (pause/resume/clean) from the API, and the Redis cost of
 * open pages (INFO commandstats deltas on the real server).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, uiGzipBytes } from '../../src/dashboard/index.js';
import { UI_ASSETS } from '../../src/dashboard/ui-assets.js';
import { TaskQueue } from '../../src/worker/index.js';
import { close, listen } from '../express/helpers.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { TOKEN, actionHeaders, waitFor } from './fleet.js';

let client: Redis;
let queue: TaskQueue;
beforeAll(() => {
  client = new Redis(servers().redisUrl);
  queue = new TaskQueue({ name: 'mounted', redis: client, prefix: uniquePrefix('dashm') });
});
afterAll(async () => {
  await queue.close();
  client.disconnect();
});

describe('assets', () => {
  it('are the files of src/dashboard/ui (regenerate: node scripts/dashboard-assets.mjs)', () => {
    const dir = resolve(import.meta.dirname, '../../src/dashboard/ui');
    for (const [name, asset] of UI_ASSETS) {
      expect(asset.body, name).toBe(readFileSync(join(dir, name), 'utf8'));
    }
  });

  it('weigh under 200 KB gzipped, with no URL of another origin', () => {
    const bytes = uiGzipBytes();
    let check = 0;
    for (const a of UI_ASSETS.values()) check += gzipSync(a.body, { level: 9 }).length;
    expect(bytes).toBe(check);
    expect(bytes).toBeLessThan(200 * 1024);
    for (const [name, a] of UI_ASSETS) {
      // The only absolute URL allowed is the SVG namespace (a name, never fetched).
      const urls = a.body.match(/https?:\/\/[^\s'"`)]+/g) ?? [];
      expect(
        urls.filter((u) => u !== 'http://www.w3.org/2000/svg'),
        name,
      ).toEqual([]);
      expect(a.body, name).not.toContain('innerHTML');
    }
  });
});

describe('mounting', () => {
  it('works as Express middleware, passing other requests on', async () => {
    const dash = createDashboard({ queues: [queue], readOnly: false, auth: TOKEN });
    const app = express();
    app.use(express.json());
    app.use(dash);
    app.get('/hello', (_req, res) => {
      res.send('app');
    });
    const srv = createServer(app);
    const url = await listen(srv);
    try {
      expect(await (await fetch(`${url}/hello`)).text()).toBe('app');
      expect((await fetch(`${url}/dashboard/`)).status).toBe(200);
      const o = (await (await fetch(`${url}/dashboard/api/overview`)).json()) as {
        queues: { name: string }[];
      };
      expect(o.queues[0]!.name).toBe('mounted');
      // express.json() already read the body: the dashboard uses req.body.
      const r = await fetch(`${url}/dashboard/api/queues/mounted/pause`, {
        method: 'POST',
        headers: actionHeaders(),
        body: '{}',
      });
      expect(r.status).toBe(200);
      expect(await queue.isPaused()).toBe(true);
      await fetch(`${url}/dashboard/api/queues/mounted/resume`, {
        method: 'POST',
        headers: actionHeaders(),
      });
      expect(await queue.isPaused()).toBe(false);
    } finally {
      await close(srv);
      await dash.close();
    }
  });

  it('works on Fastify through an onRequest hook', async () => {
    const dash = createDashboard({ queues: [queue], readOnly: false, auth: () => true });
    const app = Fastify();
    app.addHook('onRequest', (req, reply, done) => {
      if (!dash.matches(req.raw)) return done();
      reply.hijack();
      dash(req.raw, reply.raw);
    });
    app.get('/hello', async () => 'app');
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      expect(await (await fetch(`${url}/hello`)).text()).toBe('app');
      const page = await fetch(`${url}/dashboard/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
      const id = await queue.submitTask({ x: 1 });
      await queue.cancelTask(id);
      const clean = await fetch(`${url}/dashboard/api/queues/mounted/clean`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-azscale-action': '1' },
        body: JSON.stringify({ status: 'cancelled' }),
      });
      expect(clean.status).toBe(200);
      expect(((await clean.json()) as { removed: number }).removed).toBe(1);
      expect(await queue.getTask(id)).toBe(null);
      const bad = await fetch(`${url}/dashboard/api/queues/mounted/clean`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-azscale-action': '1' },
        body: JSON.stringify({ status: 'queued' }),
      });
      expect(bad.status).toBe(400);
    } finally {
      await app.close();
      await dash.close();
    }
  });
});

describe('Redis cost', () => {
  it('costs the same few commands per second however many pages poll', async () => {
    const admin = new Redis(servers().redisUrl);
    const dash = createDashboard({ queues: [queue], refreshInterval: 1, sampleInterval: 10 });
    const srv = createServer((req, res) => dash(req, res));
    const url = await listen(srv);
    const calls = async () => {
      const info = await admin.info('commandstats');
      let n = 0;
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        if (m[1] !== 'info') n += Number(m[2]);
      }
      return n;
    };
    // Pages poll the overview and the queue page every 0.5 s (twice the refresh rate).
    const poll = async (pages: number, seconds: number) => {
      const end = Date.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: pages }, async () => {
          while (Date.now() < end) {
            await fetch(`${url}/dashboard/api/overview`).then((r) => r.arrayBuffer());
            await fetch(`${url}/dashboard/api/queues/mounted`).then((r) => r.arrayBuffer());
            await new Promise((r) => setTimeout(r, 500));
          }
        }),
      );
    };
    try {
      await waitFor(async () => (await fetch(`${url}/dashboard/api/config`)).ok);
      const s0 = await calls();
      const t0 = Date.now();
      await poll(1, 4);
      const one = (await calls()) - s0;
      const oneRate = one / ((Date.now() - t0) / 1000);
      const s1 = await calls();
      const t1 = Date.now();
      await poll(10, 4);
      const ten = (await calls()) - s1;
      const tenRate = ten / ((Date.now() - t1) / 1000);
      console.log(
        `dashboard Redis cost (refreshInterval 1 s, every command incl. those inside scripts): 1 page ${oneRate.toFixed(1)}/s, 10 pages ${tenRate.toFixed(1)}/s`,
      );
      // Other tests share this Redis: the bound leaves room for them, not for a per-page cost.
      expect(tenRate).toBeLessThan(oneRate * 2 + 20);
      expect(oneRate).toBeLessThan(40);
    } finally {
      await close(srv);
      await dash.close();
      admin.disconnect();
    }
  }, 60_000);
});
