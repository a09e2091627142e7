import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  HealthRegistry,
  Metrics,
  health as defaultHealth,
  postgresHealthCheck,
  redisHealthCheck,
  workerHealthCheck,
} from '../../src/observability/index.js';
import { servers, startRedisServer } from '../harness/env.js';
import { parsePrometheus, sampleValue } from './prom-parse.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectValidation(fn: () => unknown, option: string) {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    expect((e as { option?: string }).option).toBe(option);
    return;
  }
  throw new Error('expected a ValidationError');
}

const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('HealthRegistry', () => {
  it('is up with no checks, and when every critical check passes', async () => {
    const h = new HealthRegistry();
    expect((await h.readiness()).status).toBe('up');
    expect((await h.liveness()).ok).toBe(true);
    h.register('sync', () => true);
    h.register('async', async () => {
      await sleep(5);
      return { anything: 'but false' };
    });
    h.register('void', () => undefined);
    const r = await h.readiness();
    expect(r).toMatchObject({ status: 'up', ok: true, probe: 'readiness' });
    expect(Object.keys(r.checks).sort()).toEqual(['async', 'sync', 'void']);
    expect(r.checks.async!.duration).toBeGreaterThan(0.003);
    expect(r.checks.async!.duration).toBeLessThan(1);
  });

  it('fails on false, a throw, a rejection and a timeout, and says which', async () => {
    const h = new HealthRegistry({ timeout: 0.05 });
    h.register('false', () => false);
    h.register('throws', () => {
      throw new Error('no route to host');
    });
    h.register('rejects', () => Promise.reject(new Error('ECONNREFUSED')));
    let aborted = false;
    h.register('hangs', (signal) => {
      signal.addEventListener('abort', () => {
        aborted = true;
      });
      return new Promise(() => {});
    });
    // Started while 'hangs' (registered before it) is still pending: the checks run side by
    // side. Checked by order, not by elapsed time, which a loaded machine stretches.
    let startedBeforeHangsTimedOut = false;
    h.register(
      'slow-but-allowed',
      () => {
        startedBeforeHangsTimedOut = !aborted;
        return sleep(100);
      },
      { timeout: 0.5 },
    );
    const r = await h.readiness();
    expect(r.status).toBe('down');
    expect(r.ok).toBe(false);
    expect(r.checks.false).toMatchObject({ status: 'down', error: 'returned false' });
    expect(r.checks.throws).toMatchObject({ status: 'down', error: 'no route to host' });
    expect(r.checks.rejects).toMatchObject({ status: 'down', error: 'ECONNREFUSED' });
    expect(r.checks.hangs).toMatchObject({ status: 'down', timedOut: true });
    expect(r.checks.hangs!.error).toMatch(/timed out after 0.05s/);
    expect(r.checks['slow-but-allowed']!.status).toBe('up');
    expect(aborted).toBe(true);
    // Checks run concurrently: the probe takes about the slowest check, not the sum.
    expect(startedBeforeHangsTimedOut).toBe(true);
  });

  it('a status object saying down fails the check', async () => {
    const h = new HealthRegistry();
    h.register('ok-false', () => ({ ok: false, reason: 'draining' }));
    h.register('healthy-false', async () => ({ healthy: false }));
    h.register('status-down', () => ({ status: 'DOWN' }));
    h.register('status-up', () => ({ status: 'up', ok: true }));
    const r = await h.readiness();
    expect(r.status).toBe('down');
    expect(r.checks['ok-false']).toMatchObject({ status: 'down' });
    expect(r.checks['ok-false']!.error).toContain('draining');
    expect(r.checks['healthy-false']!.status).toBe('down');
    expect(r.checks['status-down']!.status).toBe('down');
    expect(r.checks['status-up']!.status).toBe('up');
  });

  it('a non-critical failure is reported but does not fail the probe', async () => {
    const h = new HealthRegistry();
    h.register('cache-l2', () => false, { critical: false });
    h.register('db', () => true);
    const r = await h.readiness();
    expect(r.status).toBe('up');
    expect(r.checks['cache-l2']).toMatchObject({ status: 'down', critical: false });
  });

  it('keeps liveness and readiness checks apart', async () => {
    const h = new HealthRegistry();
    h.register('redis', () => false); // readiness only, by default
    h.register('event-loop', () => true, { probes: ['liveness'] });
    h.register('both', () => true, { probes: ['liveness', 'readiness'] });
    const live = await h.liveness();
    expect(live.status).toBe('up');
    expect(Object.keys(live.checks).sort()).toEqual(['both', 'event-loop']);
    const ready = await h.readiness();
    expect(ready.status).toBe('down');
    expect(Object.keys(ready.checks).sort()).toEqual(['both', 'redis']);
  });

  it('register returns a disposer; names are unique; bad input is typed', async () => {
    const h = new HealthRegistry();
    const dispose = h.register('a', () => false);
    expectValidation(() => h.register('a', () => true), 'name');
    expect(h.names()).toEqual(['a']);
    dispose();
    expect(h.names()).toEqual([]);
    expect((await h.readiness()).ok).toBe(true);
    expectValidation(() => h.register('', () => true), 'name');
    expectValidation(() => h.register('x', 'nope' as never), 'check');
    expectValidation(() => h.register('x', () => true, { timeout: 0 }), 'timeout (seconds)');
    expectValidation(() => h.register('x', () => true, { probes: ['startup' as never] }), 'probes');
    expectValidation(() => new HealthRegistry({ timeout: -1 }), 'timeout (seconds)');
    await expect(h.run('bogus' as never)).rejects.toSatisfy(isValidationError);
    expect(h.unregister('x')).toBe(false);
  });

  it('reports health_check_up and durations to a metrics sink', async () => {
    const metrics = new Metrics();
    const h = new HealthRegistry({ metrics });
    h.register('redis', () => true);
    h.register('postgres', () => false);
    await h.readiness();
    const fams = parsePrometheus(await metrics.prometheus());
    expect(sampleValue(fams, 'azscale_health_check_up', { check: 'redis' })).toBe(1);
    expect(sampleValue(fams, 'azscale_health_check_up', { check: 'postgres' })).toBe(0);
    expect(
      sampleValue(fams, 'azscale_health_check_duration_seconds_count', { check: 'redis' }),
    ).toBe(1);
  });

  it('exports a default registry for apps', () => {
    expect(defaultHealth).toBeInstanceOf(HealthRegistry);
  });
});

describe('handlers', () => {
  function registry() {
    const h = new HealthRegistry({ timeout: 0.2 });
    let dbUp = true;
    h.register('db', () => dbUp);
    h.register('alive', () => true, { probes: ['liveness'] });
    return { h, setDb: (v: boolean) => (dbUp = v) };
  }

  it('node:http: 200 when up, 503 when down, JSON body, routed by path', async () => {
    const { h, setDb } = registry();
    const base = await listen(createServer(h.handler()));
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toMatchObject({ status: 'up', checks: { db: { status: 'up' } } });
    setDb(false);
    res = await fetch(`${base}/readyz?verbose=1`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'down', checks: { db: { status: 'down' } } });
    res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { checks: object }).checks).toHaveProperty('alive');
    res = await fetch(`${base}/readyz`, { method: 'HEAD' });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('');
    expect((await fetch(`${base}/other`)).status).toBe(404);
  });

  it('Express', async () => {
    const { h, setDb } = registry();
    const app = express();
    app.get('/health/live', h.expressHandler('liveness'));
    app.get('/health/ready', h.expressHandler('readiness'));
    const base = await listen(createServer(app));
    expect((await fetch(`${base}/health/ready`)).status).toBe(200);
    setDb(false);
    const res = await fetch(`${base}/health/ready`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { checks: { db: { error: string } } }).checks.db.error).toBe(
      'returned false',
    );
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
  });

  it('Fastify: a route handler and a plugin', async () => {
    const { h, setDb } = registry();
    const app = Fastify();
    closers.push(() => app.close());
    await app.register(h.fastifyPlugin());
    app.get('/custom/ready', h.fastifyHandler('readiness'));
    const metrics = new Metrics();
    metrics.record('requests', 3);
    app.get('/metrics', metrics.fastifyHandler());
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${addr.port}`;
    let res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'up', probe: 'readiness' });
    setDb(false);
    res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${base}/custom/ready`)).status).toBe(503);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    expect(sampleValue(parsePrometheus(await res.text()), 'azscale_http_requests_total')).toBe(3);
  });
});

describe('backend checks on real servers', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: servers().pgPrimaryUrl, max: 2 });
  });
  afterAll(async () => {
    await pool.end();
  });

  it('Redis PING and PostgreSQL SELECT 1 pass against live servers', async () => {
    const redis = new Redis(servers().redisUrl);
    closers.push(async () => redis.quit());
    const h = new HealthRegistry({ timeout: 2 });
    h.register('redis', redisHealthCheck(redis));
    h.register('postgres', postgresHealthCheck(pool));
    const r = await h.readiness();
    expect(r.checks.redis!.status).toBe('up');
    expect(r.checks.postgres!.status).toBe('up');
    expect(r.status).toBe('up');
  });

  it('a Redis that dies turns readiness down within the check timeout', async () => {
    const own = await startRedisServer();
    const redis = new Redis(own.url, { maxRetriesPerRequest: null });
    redis.on('error', () => {});
    closers.push(async () => redis.disconnect());
    closers.push(() => own.stop().catch(() => {}));
    const h = new HealthRegistry({ timeout: 0.3 });
    h.register('redis', redisHealthCheck(redis));
    const base = await listen(createServer(h.handler('readiness')));
    expect((await fetch(base)).status).toBe(200);
    await own.kill();
    const t0 = performance.now();
    const res = await fetch(base);
    const took = performance.now() - t0;
    expect(res.status).toBe(503);
    const body = (await res.json()) as { checks: { redis: { status: string } } };
    expect(body.checks.redis.status).toBe('down');
    expect(took).toBeLessThan(2000);
  });

  it('a PostgreSQL that cannot be reached is down, not an exception', async () => {
    const bad = new pg.Pool({
      connectionString: 'postgresql://postgres@127.0.0.1:1/postgres',
      connectionTimeoutMillis: 200,
    });
    closers.push(() => bad.end());
    const h = new HealthRegistry({ timeout: 1 });
    h.register('postgres', postgresHealthCheck(bad));
    const r = await h.readiness();
    expect(r.status).toBe('down');
    expect(r.checks.postgres!.error).toBeTruthy();
    expect(r.checks.postgres!.error).not.toMatch(/password/i);
  });

  it('Redis Cluster PING passes', async () => {
    const { Cluster } = await import('ioredis');
    const cluster = new Cluster(servers().clusterNodes);
    closers.push(async () => cluster.quit());
    const h = new HealthRegistry({ timeout: 3 });
    h.register('redis-cluster', redisHealthCheck(cluster));
    expect((await h.readiness()).checks['redis-cluster']!.status).toBe('up');
  });

  it('worker running: a property, a method or a function', async () => {
    let running = true;
    const h = new HealthRegistry();
    h.register(
      'prop',
      workerHealthCheck({
        get isRunning() {
          return running;
        },
      }),
    );
    h.register('method', workerHealthCheck({ isRunning: () => running }));
    h.register(
      'fn',
      workerHealthCheck(() => running),
    );
    expect((await h.readiness()).status).toBe('up');
    running = false;
    const r = await h.readiness();
    expect(Object.values(r.checks).map((c) => c.status)).toEqual(['down', 'down', 'down']);
    expectValidation(() => workerHealthCheck({} as never), 'worker');
  });

  it('rejects clients without the needed method', () => {
    expectValidation(() => redisHealthCheck({} as never), 'client');
    expectValidation(() => postgresHealthCheck(null as never), 'pool');
  });
});
