/**
 * API contract of observability, written from the issue text: Metrics with the seed's
 * `record` form, Prometheus text over real HTTP, the snapshot ScalingAdvisor takes, tracing with
 * the SDK's in-memory exporter through real primitives, and health checks.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as obsModule from '../../src/observability/index.js';
import {
  BackgroundWorker,
  ConcurrencyLimiter,
  DistributedCache,
  Metrics,
  ScalingAdvisor,
  TaskQueue,
  disableTracing,
  health,
  setupTracing,
} from '../../src/index.js';
import { parsePrometheus } from '../observability/prom-parse.js';
import { servers, uniquePrefix } from '../harness/env.js';

function serve(
  handler: (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) => void,
) {
  return new Promise<{ url: string; server: Server }>((resolve) => {
    const server = createServer(handler);
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server });
    });
  });
}

describe('observability API contract: exports', () => {
  it('names exist on azscale and azscale/observability', () => {
    expect(obsModule.Metrics).toBe(Metrics);
    expect(obsModule.setupTracing).toBe(setupTracing);
    expect(obsModule.health).toBe(health);
  });
});

describe('observability API contract: Metrics', () => {
  it("record('requests'|'latency'|'errors') feed snapshot() p50/p95/p99, rates and error rate", () => {
    let now = 1_700_000_000_000;
    const metrics = new Metrics({ prefix: 'azscale_', now: () => now });
    now += 1000;
    for (let i = 1; i <= 100; i++) {
      metrics.record('requests', 1);
      metrics.record('latency', i / 100); // 0.01 .. 1.00 s
    }
    metrics.record('errors', 5);
    now += 9000;
    const snap = metrics.snapshot();
    expect(snap.p50).toBeGreaterThan(0.45);
    expect(snap.p50).toBeLessThan(0.55);
    expect(snap.p95).toBeGreaterThan(0.9);
    expect(snap.p95).toBeLessThan(1.0);
    expect(snap.p99).toBeGreaterThanOrEqual(snap.p95);
    expect(snap.p99).toBeLessThanOrEqual(1.01);
    expect(snap.latency.p95).toBe(snap.p95);
    expect(snap.errorRate).toBeCloseTo(0.05, 6);
    expect(snap.requestRate).toBeCloseTo(10, 6); // 100 requests over 10 s
    expect(Object.keys(snap.rates).length).toBeGreaterThan(0);
    expect(snap.p95LatencyMs).toBeCloseTo(snap.p95 * 1000, 6);
  });

  it('the snapshot is what ScalingAdvisor.assess takes', () => {
    const metrics = new Metrics();
    for (let i = 0; i < 50; i++) {
      metrics.record('requests', 1);
      metrics.record('latency', 3);
    }
    const assessment = new ScalingAdvisor().assess(metrics.snapshot());
    expect(assessment.scale).toBe('up');
    expect(assessment.reasons.join(' ')).toMatch(/p95|latency/i);
  });

  it('counter / histogram / gauge(name, fn) appear in prometheus() text with the prefix', async () => {
    const metrics = new Metrics({ prefix: 'myapp_' });
    metrics.counter('jobs_total', { kind: 'a' }).inc(3);
    metrics.counter('jobs_total', { kind: 'b' }).inc();
    metrics.histogram('job_duration_seconds').observe(0.25);
    let depth = 7;
    metrics.gauge('queue_depth', () => depth);
    const fams = parsePrometheus(await metrics.prometheus());
    const jobs = fams.get('myapp_jobs_total');
    expect(jobs?.type).toBe('counter');
    expect(jobs?.samples.find((x) => x.labels.kind === 'a')?.value).toBe(3);
    expect(jobs?.samples.find((x) => x.labels.kind === 'b')?.value).toBe(1);
    const h = fams.get('myapp_job_duration_seconds');
    expect(h?.type).toBe('histogram');
    expect(h?.samples.find((x) => x.name === 'myapp_job_duration_seconds_count')?.value).toBe(1);
    expect(fams.get('myapp_queue_depth')?.samples[0]?.value).toBe(7);
    depth = 9;
    const again = parsePrometheus(await metrics.prometheus());
    expect(again.get('myapp_queue_depth')?.samples[0]?.value).toBe(9);
    expect(metrics.snapshot().queueDepth).toBe(9);
  });

  it('primitives report into Metrics; /metrics is read from a real HTTP server and parsed', async () => {
    const metrics = new Metrics();
    const cache = new DistributedCache({ metrics, prefix: uniquePrefix('c9') });
    await cache.set('a', '1');
    await cache.get('a');
    await cache.get('missing');
    const q = new TaskQueue({ name: uniquePrefix('c9q').replace(/:$/, ''), metrics });
    const w = new BackgroundWorker({ queue: q, metrics, handler: async (d: unknown) => d });
    await w.start();
    const id = await q.submitTask(1);
    await q.waitForResult(id, { timeout: 5 });
    await w.stop({ timeout: 1 });
    await q.close();
    await cache.close();

    const { url, server } = await serve(metrics.handler());
    try {
      const res = await fetch(`${url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/plain/);
      const fams = parsePrometheus(await res.text());
      const names = [...fams.keys()];
      for (const n of names) expect(n.startsWith('azscale_')).toBe(true);
      const counters = [...fams.values()].filter((f) => f.type === 'counter');
      for (const f of counters) expect(f.name.endsWith('_total')).toBe(true);
      const hits = fams.get('azscale_cache_hits_total');
      const misses = fams.get('azscale_cache_misses_total');
      expect(hits?.samples.reduce((a, x) => a + x.value, 0)).toBeGreaterThanOrEqual(1);
      expect(misses?.samples.reduce((a, x) => a + x.value, 0)).toBeGreaterThanOrEqual(1);
      expect(names.some((n) => /^azscale_worker_.*completed.*_total$/.test(n))).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('observability API contract: tracing through real primitives', () => {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  afterAll(async () => {
    disableTracing();
    await provider.shutdown();
    context.disable();
  });

  function parentOf(s: ReadableSpan): string | undefined {
    const v2 = (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext;
    return v2?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId;
  }

  it('spans azscale.<module>.<op> for cache, limiter and worker, parented to the request span', async () => {
    const tracing = setupTracing({ serviceName: 'agent-api', tracerProvider: provider });
    expect(tracing.enabled).toBe(true);
    const cache = new DistributedCache({ prefix: uniquePrefix('c9t') });
    const limiter = new ConcurrencyLimiter({ concurrency: 2 });
    const q = new TaskQueue({ name: uniquePrefix('c9t').replace(/:$/, '') });
    const w = new BackgroundWorker({
      queue: q,
      handler: async (d: unknown) => `done ${String(d)}`,
    });
    await w.start();
    const app = provider.getTracer('app');
    let taskId = '';
    try {
      await app.startActiveSpan('GET /agent', async (root) => {
        const hit = await cache.get('answer');
        expect(hit).toBeNull();
        taskId = await limiter.run(() => q.submitTask('job'));
        await q.waitForResult(taskId, { timeout: 5 });
        root.end();
      });
    } finally {
      await w.stop({ timeout: 1 });
      await q.close();
      await cache.close();
      tracing.disable();
    }
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'GET /agent');
    expect(root).toBeDefined();
    const names = spans.map((s) => s.name);
    const cacheSpan = spans.find((s) => s.name.startsWith('azscale.cache.'));
    const limiterSpan = spans.find((s) => /^azscale\.(resilience\.)?limiter\./.test(s.name));
    const submitSpan = spans.find((s) => s.name === 'azscale.worker.submit');
    const processSpan = spans.find((s) => s.name === 'azscale.worker.process');
    expect(cacheSpan, names.join(', ')).toBeDefined();
    expect(limiterSpan, names.join(', ')).toBeDefined();
    expect(submitSpan, names.join(', ')).toBeDefined();
    expect(processSpan, names.join(', ')).toBeDefined();
    const rootId = root?.spanContext().spanId;
    expect(parentOf(cacheSpan as ReadableSpan)).toBe(rootId);
    expect(parentOf(limiterSpan as ReadableSpan)).toBe(rootId);
    expect(parentOf(submitSpan as ReadableSpan)).toBe(limiterSpan?.spanContext().spanId);
    expect(cacheSpan?.attributes['azscale.key_count']).toBe(1);
    expect(cacheSpan?.attributes['azscale.service.name']).toBe('agent-api');
    const attrs = JSON.stringify(processSpan?.attributes ?? {});
    expect(attrs).toContain(taskId);
  });
});

describe('observability API contract: tracing across the queue', () => {
  // Parents follow `await` only with a context manager, as in any traced Node app.
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(() => {
    context.disable();
  });
  const parentOf = (s: ReadableSpan): string | undefined =>
    (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext?.spanId ??
    (s as unknown as { parentSpanId?: string }).parentSpanId;

  // The submitter's traceparent travels with the task, so the worker's span joins the request's
  // trace, as a child of the submit span, on every backend.
  it.each(['memory', 'redis', 'cluster'] as const)(
    'azscale.worker.process joins the trace of the span that submitted the task (%s)',
    async (backend) => {
      const exporter = new InMemorySpanExporter();
      const provider = new BasicTracerProvider({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      });
      const tracing = setupTracing({ serviceName: 'agent-api', tracerProvider: provider });
      const redis =
        backend === 'memory'
          ? undefined
          : backend === 'redis'
            ? servers().redisUrl
            : { nodes: servers().clusterNodes };
      const q = new TaskQueue({ name: uniquePrefix('c9g').replace(/:$/, ''), redis });
      const w = new BackgroundWorker({ queue: q, handler: async () => 1 });
      await w.start();
      let traceId = '';
      // Read before provider.shutdown(): shutting down an InMemorySpanExporter empties it.
      let spans: ReadableSpan[] = [];
      try {
        await provider.getTracer('app').startActiveSpan('request', async (root) => {
          traceId = root.spanContext().traceId;
          const id = await q.submitTask('x');
          await q.waitForResult(id, { timeout: 5 });
          root.end();
        });
        spans = exporter.getFinishedSpans();
      } finally {
        await w.stop({ timeout: 1 });
        await q.close();
        tracing.disable();
        await provider.shutdown();
      }
      const processSpan = spans.find((s) => s.name === 'azscale.worker.process');
      const submitSpan = spans.find((s) => s.name === 'azscale.worker.submit');
      expect(processSpan?.spanContext().traceId).toBe(traceId);
      expect(parentOf(processSpan as ReadableSpan)).toBe(submitSpan?.spanContext().spanId);
    },
  );
});

describe('observability API contract: health', () => {
  it('health.register / liveness / readiness, with timeouts, on node:http', async () => {
    const name = uniquePrefix('c9h');
    let redisUp = true;
    const disposers = [
      health.register(`${name}redis`, () => redisUp),
      health.register(`${name}slow`, () => new Promise((r) => setTimeout(() => r(true), 10_000)), {
        timeout: 0.2,
      }),
    ];
    try {
      const live = await health.liveness();
      expect(live.ok).toBe(true);
      const t0 = Date.now();
      const ready = await health.readiness();
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(ready.ok).toBe(false);
      expect(ready.checks[`${name}slow`]?.status).toBe('down');
      expect(ready.checks[`${name}redis`]?.status).toBe('up');
      disposers.pop()?.();
      expect((await health.readiness()).checks[`${name}redis`]?.status).toBe('up');
      redisUp = false;
      const { url, server } = await serve(health.handler());
      try {
        const r = await fetch(`${url}/readyz`);
        expect(r.status).toBe(503);
        const body = (await r.json()) as { checks: Record<string, { status: string }> };
        expect(body.checks[`${name}redis`]?.status).toBe('down');
        redisUp = true;
        expect((await fetch(`${url}/readyz`)).status).toBe(200);
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
      } finally {
        await new Promise((r) => server.close(r));
      }
    } finally {
      for (const d of disposers) d();
    }
  });
});
