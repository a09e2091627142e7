/**
 * The dashboard's JSON API and actions over real HTTP against real Redis: figures equal the
 * primitives' own, actions need readOnly:false + auth + the anti-CSRF header and change nothing
 * when refused, bad parameters answer 400 with an AZS_ code, and nothing secret leaks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSP, createDashboard } from '../../src/dashboard/index.js';
import { isValidationError } from '../../src/core/errors.js';
import { type Fleet, TOKEN, actionHeaders, startFleet, waitFor } from './fleet.js';

let f: Fleet;
beforeAll(async () => {
  f = await startFleet();
});
afterAll(async () => {
  await f?.stop();
});

async function json(path: string, init?: RequestInit) {
  const res = await fetch(`${f.base}${path}`, init);
  return { res, status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function deadLetter(data: Record<string, unknown>): Promise<string> {
  const id = await f.queue.submitTask({ fail: true, ...data });
  await waitFor(async () => (await f.queue.deadLetters()).some((t) => t.id === id));
  return id;
}

describe('dashboard JSON API', () => {
  it('shows the same counts as queue.stats(), and limiter, rate and spend figures', async () => {
    const id = await deadLetter({});
    await f.optimizer.recordSpend(2.5);
    // Snapshots are reused for one refresh interval (3 s): within that the figures converge.
    const keys = ['queued', 'delayed', 'processing', 'completed', 'failed', 'deadLettered'];
    let got: { status: number; body: Record<string, unknown>; res: Response } | undefined;
    let q: { name: string; stats: Record<string, number> } | undefined;
    await waitFor(async () => {
      got = await json('/api/overview');
      q = (got.body.queues as (typeof q)[])[0]!;
      const stats = (await f.queue.stats()) as unknown as Record<string, number>;
      return keys.every((k) => q!.stats[k] === stats[k]);
    }, 30_000);
    const { status, body, res } = got!;
    expect(status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(q!.name).toBe('jobs');
    expect(q!.stats.deadLettered).toBeGreaterThanOrEqual(1);
    const spend = body.spend as { spent: number; budget: number; history: { total: number }[] };
    expect(spend.spent).toBeCloseTo(await f.optimizer.currentSpend(), 6);
    expect(spend.budget).toBe(20);
    expect(spend.history).toHaveLength(24);
    expect(spend.history.at(-1)!.total).toBeCloseTo(spend.spent, 6);
    const [lim] = body.limiters as { inUse: number; concurrency: number }[];
    expect(lim).toMatchObject({ concurrency: 4, inUse: await f.limiter.inFlight() });
    // Rate budgets refill continuously: read them right after spending, uncached.
    const t0 = Date.now();
    expect((await f.rate.tryAcquire({ tokens: 3000 })).allowed).toBe(true);
    const limits = await json('/api/limits');
    const refillS = (Date.now() - t0) / 1000 + 0.01;
    const [rate] = limits.body.rateLimiters as { requestsLeft: number; tokensLeft: number }[];
    expect(rate!.tokensLeft).toBeGreaterThanOrEqual(2900);
    expect(rate!.tokensLeft).toBeLessThanOrEqual(3000 + Math.ceil(100 * refillS));
    expect(rate!.requestsLeft).toBeLessThanOrEqual(59 + Math.ceil(refillS));
    // The dead letter is listed, with its error redacted.
    const list = await json('/api/queues/jobs/tasks?status=dead&limit=100');
    const task = (list.body.tasks as { id: string; error: string }[]).find((t) => t.id === id)!;
    expect(task.error).toContain('upstream');
    expect(task.error).not.toContain('10.1.2.3');
    // One task: its data (Redis keeps it until the task completes), attempts and limits.
    const one = await json(`/api/queues/jobs/tasks/${encodeURIComponent(id)}`);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id, data: { fail: true } });
  });

  it('never puts a server address or the token in any JSON', async () => {
    for (const p of ['/api/config', '/api/overview', '/api/limits', '/api/breakers']) {
      const text = await (await fetch(`${f.base}${p}`)).text();
      expect(text).not.toContain('127.0.0.1');
      expect(text).not.toContain('redis://');
      expect(text).not.toContain(TOKEN);
    }
  });

  it('sends a strict CSP and serves only its own assets', async () => {
    const res = await fetch(`${f.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(CSP);
    expect(CSP).toContain("script-src 'self'");
    expect(CSP).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect((await fetch(`${f.base}/assets/app.js`)).status).toBe(200);
    // Path traversal and prototype names reach nothing.
    for (const p of [
      '/assets/..%2F..%2Fpackage.json',
      '/assets/%2e%2e%2fpackage.json',
      '/assets/../../package.json',
      '/assets/__proto__',
      '/assets/constructor',
      '/assets/index.html',
      '/api/queues/__proto__',
      '/api/queues/constructor/tasks',
      '/api/breakers/__proto__/reset',
    ]) {
      const r = await fetch(`${f.base}${p}`, { method: p.endsWith('reset') ? 'POST' : 'GET' });
      expect([403, 404], p).toContain(r.status);
      const b = (await r.json()) as { error: { code: string } };
      expect(b.error.code).toMatch(/^AZS_/);
    }
    // The base path without its slash redirects (relative URLs need it).
    const redirect = await fetch(f.base, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/dashboard/');
  });

  it('answers bad parameters with 400 and an AZS_ code', async () => {
    const bad = [
      '/api/queues/jobs/tasks?status=nope',
      '/api/queues/jobs/tasks?limit=0',
      '/api/queues/jobs/tasks?limit=101',
      '/api/queues/jobs/tasks?limit=NaN',
      '/api/queues/jobs/tasks?offset=-1',
      '/api/queues/jobs/tasks?offset=1e9',
      '/api/queues/jobs/tasks?__proto__=1',
      '/api/queues/%E0%A4%A/tasks',
      `/api/queues/jobs/tasks?status=${'x'.repeat(3000)}`,
    ];
    for (const p of bad) {
      const { status, body } = await json(p);
      expect(status, p).toBe(400);
      expect((body.error as { code: string }).code, p).toBe('AZS_VALIDATION');
    }
    const post = (body: string, headers = actionHeaders()) =>
      json('/api/queues/jobs/clean', { method: 'POST', headers, body });
    expect((await post('{not json')).status).toBe(400);
    expect((await post('[1]')).status).toBe(400);
    expect(
      (await post(JSON.stringify({ status: 'completed', junk: 'x'.repeat(20_000) }))).status,
    ).toBe(400);
    expect((await json('/api/overview', { method: 'DELETE' })).status).toBe(405);
    expect((await json('/api/queues/jobs/tasks/nope-404')).status).toBe(404);
  });

  it('refuses unauthorised actions with 403 and changes nothing', async () => {
    const id = await deadLetter({});
    const before = await f.queue.stats();
    const path = `/api/queues/jobs/tasks/${id}/retry`;
    const attempts: RequestInit[] = [
      { method: 'POST' },
      { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } }, // no anti-CSRF header
      { method: 'POST', headers: { 'x-azscale-action': '1' } }, // no token
      { method: 'POST', headers: actionHeaders('wrong-token-xxxx') },
      { method: 'POST', headers: { ...actionHeaders(), origin: 'https://evil.example' } },
      { method: 'POST', headers: { ...actionHeaders(), 'sec-fetch-site': 'cross-site' } },
    ];
    for (const init of attempts) {
      const { status, body } = await json(path, init);
      expect(status).toBe(403);
      expect((body.error as { code: string }).code).toBe('AZS_FORBIDDEN');
    }
    expect((await f.queue.deadLetters()).some((t) => t.id === id)).toBe(true);
    const after = await f.queue.stats();
    expect(after.deadLettered).toBe(before.deadLettered);

    // A read-only dashboard refuses even an authorised request.
    const ro = createDashboard({ queues: [f.queue], auth: TOKEN });
    const { createServer } = await import('node:http');
    const { listen, close } = await import('../express/helpers.js');
    const srv = createServer((req, res) => ro(req, res));
    const url = await listen(srv);
    try {
      const r = await fetch(`${url}/dashboard${path.replace('/api', '/api')}`, {
        method: 'POST',
        headers: actionHeaders(),
      });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain(
        'read-only',
      );
    } finally {
      await close(srv);
      await ro.close();
    }
    expect((await f.queue.deadLetters()).some((t) => t.id === id)).toBe(true);
  });

  it('redrives a dead letter with an authorised action, and it runs', async () => {
    const id = await deadLetter({ marker: 'redrive-me' });
    f.heal();
    const { status, body } = await json(`/api/queues/jobs/tasks/${id}/retry`, {
      method: 'POST',
      headers: actionHeaders(),
      body: '{}',
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({ ok: true, redriven: 1 });
    await waitFor(async () => (await f.queue.getTask(id))?.status === 'completed');
    // The overview shows the change at its next read, not a stale snapshot.
    const o = await json('/api/overview');
    const q = (o.body.queues as { stats: { deadLettered: number } }[])[0]!;
    expect(q.stats.deadLettered).toBe((await f.queue.stats()).deadLettered);
  });

  it('resets a breaker and records why it opened', async () => {
    await f.breaker
      .execute(() => Promise.reject(new Error('db at 10.9.9.9:5432 down')))
      .catch(() => {});
    expect(f.breaker.state).toBe('open');
    const { body } = await json('/api/breakers');
    const b = (
      body.breakers as {
        state: string;
        lastFailure: { message: string };
        recentFailures: unknown[];
      }[]
    )[0]!;
    expect(b.state).toBe('open');
    expect(b.lastFailure.message).not.toContain('10.9.9.9');
    expect(b.recentFailures.length).toBe(1);
    const r = await json(`/api/breakers/${encodeURIComponent(f.breaker.name)}/reset`, {
      method: 'POST',
      headers: actionHeaders(),
    });
    expect(r.status).toBe(200);
    expect(f.breaker.state).toBe('closed');
  });

  it('validates its options with ValidationError naming the option', () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ basePath: '/../x' }, 'basePath'],
      [{ basePath: 5 }, 'basePath'],
      [{ refreshInterval: 0 }, 'refreshInterval'],
      [{ refreshInterval: Number.NaN }, 'refreshInterval'],
      [{ sampleInterval: 1e9 }, 'sampleInterval'],
      [{ queues: ['x'] }, 'redis'],
      [{ queues: 'x' }, 'queues'],
      [{ limiters: [{}] }, 'limiters[0]'],
      [{ auth: 42 }, 'auth'],
      [{ auth: 'has space' }, 'auth'],
      [{ readOnly: 'no' }, 'readOnly'],
      [{ title: 'x'.repeat(500) }, 'title'],
    ];
    for (const [o, option] of bad) {
      let err: unknown;
      try {
        createDashboard(o as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(o)).toBe(true);
      expect((err as { option: string }).option).toBe(option);
    }
  });
});
