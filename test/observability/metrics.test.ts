import { execFileSync, spawnSync } from 'node:child_process';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { Registry, register as promGlobalRegister } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTimeoutError, isValidationError } from '../../src/core/errors.js';
import type { MetricsSink } from '../../src/core/metrics.js';
import { Metrics } from '../../src/observability/index.js';
import { ScalingAdvisor, type ScalingSnapshot } from '../../src/scaling/index.js';
import { parsePrometheus, sampleValue } from './prom-parse.js';

function clock(start = 1_800_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance(seconds: number) {
      t += seconds * 1000;
    },
  };
}

function expectValidation(fn: () => unknown, option?: string) {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    if (option) expect((e as { option?: string }).option).toBe(option);
    return;
  }
  throw new Error('expected a ValidationError');
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('Metrics as the core MetricsSink', () => {
  it('implements the interface every module takes, and hands out one handle per series', () => {
    const m = new Metrics();
    const sink: MetricsSink = m;
    const a = sink.counter('cache_hits_total', { tier: 'l1', cache: 'users' });
    const b = sink.counter('cache_hits_total', { cache: 'users', tier: 'l1' });
    expect(a).toBe(b);
    expect(sink.counter('cache_hits_total', { tier: 'l2', cache: 'users' })).not.toBe(a);
    expect(sink.histogram('cache_get_seconds')).toBe(sink.histogram('cache_get_seconds'));
    expect(sink.gauge('limiter_in_flight')).toBe(sink.gauge('limiter_in_flight'));
  });

  it('counts, sets and observes; prometheus() shows the values with the prefix', async () => {
    const m = new Metrics();
    const hits = m.counter('cache_hits_total', { tier: 'l1' });
    hits.inc();
    hits.inc(4);
    const g = m.gauge('limiter_in_flight');
    g.set(10);
    g.inc(2);
    g.dec();
    const h = m.histogram('cache_get_seconds');
    for (const v of [0.0005, 0.003, 0.003, 0.2, 7]) h.observe(v);
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_cache_hits_total', { tier: 'l1' })).toBe(5);
    expect(sampleValue(fams, 'azscale_limiter_in_flight')).toBe(11);
    expect(fams.get('azscale_cache_get_seconds')?.type).toBe('histogram');
    expect(sampleValue(fams, 'azscale_cache_get_seconds_bucket', { le: '0.001' })).toBe(1);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_bucket', { le: '0.005' })).toBe(3);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_bucket', { le: '0.25' })).toBe(4);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_bucket', { le: '5' })).toBe(4);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_bucket', { le: '10' })).toBe(5);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_count')).toBe(5);
    expect(sampleValue(fams, 'azscale_cache_get_seconds_sum')).toBeCloseTo(7.2065, 10);
  });

  it('a value equal to a bucket bound falls in that bucket (le is inclusive)', async () => {
    const m = new Metrics({ buckets: [1, 2] });
    m.histogram('x_seconds').observe(1);
    m.histogram('x_seconds').observe(2);
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_x_seconds_bucket', { le: '1' })).toBe(1);
    expect(sampleValue(fams, 'azscale_x_seconds_bucket', { le: '2' })).toBe(2);
  });

  it('_bytes histograms get byte buckets, and bucketsByMetric overrides', async () => {
    const m = new Metrics({ bucketsByMetric: { queue_wait_seconds: [0.5, 300] } });
    m.histogram('cache_value_bytes').observe(5000);
    m.histogram('queue_wait_seconds').observe(100);
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_cache_value_bytes_bucket', { le: '16384' })).toBe(1);
    expect(sampleValue(fams, 'azscale_cache_value_bytes_bucket', { le: '4096' })).toBe(0);
    const waitBuckets = fams
      .get('azscale_queue_wait_seconds')!
      .samples.filter((s) => s.name.endsWith('_bucket'))
      .map((s) => s.labels.le);
    expect(waitBuckets).toEqual(['0.5', '300', '+Inf']);
  });

  it('escapes label values so the output still parses', async () => {
    const m = new Metrics({ prefix: 'app_' });
    m.counter('odd_total', { v: 'a "quoted"\\ back\nslash' }).inc();
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'app_odd_total', { v: 'a "quoted"\\ back\nslash' })).toBe(1);
  });

  it('never touches the prom-client global registry; each instance has its own', async () => {
    const before = promGlobalRegister.getMetricsAsArray().length;
    const a = new Metrics();
    const b = new Metrics();
    a.counter('http_requests_total').inc(3);
    b.counter('http_requests_total').inc(5);
    expect(promGlobalRegister.getMetricsAsArray().length).toBe(before);
    expect(a.registry).not.toBe(b.registry);
    expect(sampleValue(parsePrometheus(await a.prometheus()), 'azscale_http_requests_total')).toBe(
      3,
    );
    expect(sampleValue(parsePrometheus(await b.prometheus()), 'azscale_http_requests_total')).toBe(
      5,
    );
  });

  it('can share a registry the app already has, next to its own prom-client metrics', async () => {
    const { Counter } = await import('prom-client');
    const registry = new Registry();
    const own = new Counter({ name: 'app_logins_total', help: 'logins', registers: [registry] });
    own.inc(2);
    const m = new Metrics({ registry });
    m.counter('http_requests_total').inc();
    const fams = parsePrometheus(await registry.metrics());
    expect(sampleValue(fams, 'app_logins_total')).toBe(2);
    expect(sampleValue(fams, 'azscale_http_requests_total')).toBe(1);
    // A second instance registering the same name in that registry is refused, by name.
    expectValidation(() => new Metrics({ registry }).counter('http_requests_total'), 'name');
    expect(m.contentType).toBe(registry.contentType);
  });

  it('does not add the prefix twice', async () => {
    const m = new Metrics();
    m.counter('azscale_jobs_total').inc();
    expect(m.counter('jobs_total')).toBe(m.counter('azscale_jobs_total'));
    expect(await m.prometheus()).toContain('azscale_jobs_total 1');
  });
});

describe('validation', () => {
  it('rejects bad values with a ValidationError naming the metric', () => {
    const m = new Metrics();
    expectValidation(() => m.counter('a_total').inc(-1), 'value');
    expectValidation(() => m.counter('a_total').inc(Number.NaN), 'value');
    expectValidation(() => m.counter('a_total').inc(Number.POSITIVE_INFINITY), 'value');
    expectValidation(() => m.histogram('b_seconds').observe(-0.1), 'value');
    expectValidation(() => m.histogram('b_seconds').observe(Number.NaN), 'value');
    expectValidation(() => m.gauge('c').set(Number.NaN), 'value');
    try {
      m.counter('a_total').inc(-1);
    } catch (e) {
      expect((e as Error).message).toContain('azscale_a_total');
    }
  });

  it('rejects bad names, labels and kind or label-set conflicts', () => {
    const m = new Metrics();
    expectValidation(() => m.counter('bad-name_total'), 'name');
    expectValidation(() => m.counter(''), 'name');
    expectValidation(() => m.counter('x_total', { 'bad-label': 'v' }), 'labels');
    expectValidation(() => m.counter('x_total', { __reserved: 'v' }), 'labels');
    expectValidation(() => m.histogram('h_seconds', { le: '1' }), 'labels');
    expectValidation(() => m.counter('x_total', { obj: {} as unknown as string }), 'labels');
    m.counter('y_total', { tier: 'l1' });
    expectValidation(() => m.histogram('y_total'), 'name');
    expectValidation(() => m.counter('y_total', { node: 'a' }), 'labels');
    expectValidation(() => m.counter('y_total'), 'labels');
  });

  it('bounds the label sets per metric', () => {
    const m = new Metrics({ maxSeriesPerMetric: 3 });
    for (const id of ['a', 'b', 'c']) m.counter('tasks_total', { id });
    expectValidation(() => m.counter('tasks_total', { id: 'd' }), 'maxSeriesPerMetric');
    // Existing series are still served.
    expect(() => m.counter('tasks_total', { id: 'a' }).inc()).not.toThrow();
  });

  it('rejects bad options, naming the option', () => {
    expectValidation(() => new Metrics({ prefix: 'bad-prefix' }), 'prefix');
    expectValidation(() => new Metrics({ relativeAccuracy: 0.5 }), 'relativeAccuracy');
    expectValidation(() => new Metrics({ relativeAccuracy: 0 }), 'relativeAccuracy');
    expectValidation(() => new Metrics({ window: -1 }), 'window (seconds)');
    expectValidation(() => new Metrics({ windowSlots: 1 }), 'windowSlots');
    expectValidation(() => new Metrics({ buckets: [1, 1] }), 'buckets');
    expectValidation(() => new Metrics({ buckets: [] }), 'buckets');
    expectValidation(() => new Metrics({ bucketsByMetric: { x: [2, 1] } }), 'bucketsByMetric.x');
    expectValidation(
      () => new Metrics({ recordKinds: { x: 'summary' as 'gauge' } }),
      'recordKinds',
    );
    expectValidation(() => new Metrics({ maxSeriesPerMetric: 0 }), 'maxSeriesPerMetric');
    expectValidation(() => new Metrics({ registry: {} as Registry }), 'registry');
  });
});

describe('record(): the seed form', () => {
  it('maps requests/errors to counters and latency to a seconds histogram', async () => {
    const m = new Metrics();
    for (let i = 0; i < 10; i++) {
      m.record('requests', 1);
      m.record('latency', 0.1 * (i + 1));
    }
    m.record('errors', 2);
    m.record('errors', 0);
    const fams = parsePrometheus(await m.prometheus());
    expect(fams.get('azscale_http_requests_total')?.type).toBe('counter');
    expect(sampleValue(fams, 'azscale_http_requests_total')).toBe(10);
    expect(sampleValue(fams, 'azscale_http_errors_total')).toBe(2);
    expect(fams.get('azscale_http_request_duration_seconds')?.type).toBe('histogram');
    expect(sampleValue(fams, 'azscale_http_request_duration_seconds_count')).toBe(10);
    expect(sampleValue(fams, 'azscale_http_request_duration_seconds_sum')).toBeCloseTo(5.5, 10);
  });

  it('infers the kind from the unit suffix, else sets a gauge; recordKinds overrides', async () => {
    const m = new Metrics({ recordKinds: { tokens: 'counter' } });
    m.record('llm_tokens_total', 500);
    m.record('llm_tokens_total', 250);
    m.record('upload_bytes', 2048);
    m.record('queue_depth', 30);
    m.record('queue_depth', 12);
    m.record('tokens', 7);
    m.record('tokens', 3);
    m.record('requests', 1, { route: '/a' });
    m.record('requests', 1, { route: '/b' });
    m.record('requests', 1, { route: '/a' });
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_llm_tokens_total')).toBe(750);
    expect(sampleValue(fams, 'azscale_upload_bytes_count')).toBe(1);
    expect(fams.get('azscale_queue_depth')?.type).toBe('gauge');
    expect(sampleValue(fams, 'azscale_queue_depth')).toBe(12);
    expect(fams.get('azscale_tokens')?.type).toBe('counter');
    expect(sampleValue(fams, 'azscale_tokens')).toBe(10);
    expect(sampleValue(fams, 'azscale_http_requests_total', { route: '/a' })).toBe(2);
    expect(sampleValue(fams, 'azscale_http_requests_total', { route: '/b' })).toBe(1);
  });

  it('passes bad values on as typed errors', () => {
    const m = new Metrics();
    expectValidation(() => m.record('requests', -1), 'value');
    expectValidation(() => m.record('latency', Number.NaN), 'value');
  });
});

describe('gauge callbacks', () => {
  it('reads sync and async callbacks at collection; a disposer removes them', async () => {
    const m = new Metrics();
    let depth = 4;
    const dispose = m.gauge('worker_queue_depth', () => depth, { queue: 'emails' });
    m.gauge('pool_idle', async () => 3);
    let fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_worker_queue_depth', { queue: 'emails' })).toBe(4);
    expect(sampleValue(fams, 'azscale_pool_idle')).toBe(3);
    depth = 9;
    fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_worker_queue_depth', { queue: 'emails' })).toBe(9);
    expect(m.snapshot().gauges.pool_idle).toBe(3); // last value the async callback gave
    dispose();
    fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_worker_queue_depth', { queue: 'emails' })).toBeUndefined();
  });

  it('a failing callback drops its series, emits collectError and keeps /metrics working', async () => {
    const m = new Metrics();
    const errors: [string, unknown][] = [];
    m.on('collectError', (name, e) => errors.push([name, e]));
    m.gauge('broken', () => {
      throw new Error('boom');
    });
    m.gauge('rejects', () => Promise.reject(new Error('later')));
    m.gauge('nan', () => Number.NaN);
    m.gauge('fine', () => 1);
    const fams = parsePrometheus(await m.prometheus());
    expect(sampleValue(fams, 'azscale_fine')).toBe(1);
    expect(sampleValue(fams, 'azscale_broken')).toBeUndefined();
    expect(sampleValue(fams, 'azscale_rejects')).toBeUndefined();
    expect(sampleValue(fams, 'azscale_nan')).toBeUndefined();
    expect(errors.map((e) => e[0]).sort()).toEqual([
      'azscale_broken',
      'azscale_nan',
      'azscale_rejects',
    ]);
  });

  it('a stuck async callback is cut at gaugeTimeout instead of hanging the scrape', async () => {
    const m = new Metrics({ gaugeTimeout: 0.05 });
    const errors: unknown[] = [];
    m.on('collectError', (_name, e) => errors.push(e));
    m.gauge('stuck', () => new Promise<number>(() => {}));
    m.gauge('fine', async () => 2);
    const t0 = performance.now();
    const fams = parsePrometheus(await m.prometheus());
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(sampleValue(fams, 'azscale_fine')).toBe(2);
    expect(sampleValue(fams, 'azscale_stuck')).toBeUndefined();
    expect(isTimeoutError(errors[0])).toBe(true);
    expectValidation(() => new Metrics({ gaugeTimeout: 0 }), 'gaugeTimeout (seconds)');
  });

  it('refuses a callback and a settable gauge on the same series', () => {
    const m = new Metrics();
    m.gauge('g', () => 1);
    expectValidation(() => m.gauge('g'), 'name');
    expectValidation(() => m.gauge('g', () => 2), 'name');
  });
});

describe('snapshot()', () => {
  it('gives request rate, error rate and latency percentiles over the window', () => {
    const c = clock();
    const m = new Metrics({ now: c.now });
    const latencies: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const v = 0.01 + ((i * 7919) % 1000) / 400; // 10 ms .. 2.5 s, shuffled
      latencies.push(v);
      m.record('requests', 1);
      m.record('latency', v);
      if (i % 50 === 0) m.record('errors', 1);
    }
    c.advance(10);
    const s = m.snapshot();
    expect(s.timestampMs).toBe(c.now());
    expect(s.windowSeconds).toBe(10);
    expect(s.requestRate).toBeCloseTo(100, 10);
    expect(s.httpRequestsPerSecond).toBe(s.requestRate);
    expect(s.errorRate).toBeCloseTo(20 / 1000, 10);
    latencies.sort((a, b) => a - b);
    const exact = (q: number) => latencies[Math.ceil(q * latencies.length) - 1]! * 1000;
    for (const [q, got] of [
      [0.5, s.p50LatencyMs],
      [0.95, s.p95LatencyMs],
      [0.99, s.p99LatencyMs],
    ] as const) {
      expect(got).toBeDefined();
      expect(Math.abs(got! - exact(q))).toBeLessThanOrEqual(0.01 * exact(q));
    }
    expect(s.histograms.http_request_duration_seconds!.count).toBe(1000);
    expect(s.latency).toEqual(s.histograms.http_request_duration_seconds);
    expect(s.latency.p95 * 1000).toBe(s.p95LatencyMs);
    expect(s.rates.http_requests_total).toBeCloseTo(100, 10);
    expect(s.rates.http_errors_total).toBeCloseTo(2, 10);
  });

  it('honours relativeAccuracy', () => {
    const c = clock();
    const m = new Metrics({ now: c.now, relativeAccuracy: 0.001 });
    const values = Array.from({ length: 5000 }, (_, i) => 0.001 * 1.0007 ** i);
    for (const v of values) m.histogram('op_seconds').observe(v);
    const s = m.snapshot().histograms.op_seconds!;
    const exact = values[Math.ceil(0.95 * values.length) - 1]!;
    expect(Math.abs(s.p95 - exact)).toBeLessThanOrEqual(0.001 * exact);
  });

  it('rates follow the window: old counts leave it', () => {
    const c = clock();
    const m = new Metrics({ now: c.now, window: 60 });
    const req = m.counter('http_requests_total');
    req.inc(100);
    c.advance(10);
    expect(m.snapshot().requestRate).toBeCloseTo(10, 10);
    req.inc(50);
    c.advance(10);
    expect(m.snapshot().requestRate).toBeCloseTo(150 / 20, 10);
    c.advance(60); // the t=20 s sample is now the oldest inside the window
    req.inc(60);
    const s = m.snapshot();
    expect(s.windowSeconds).toBe(60);
    expect(s.requestRate).toBeCloseTo(1, 10);
  });

  it('percentiles leave the window too', () => {
    const c = clock();
    const m = new Metrics({ now: c.now, window: 60 });
    for (let i = 0; i < 100; i++) m.record('latency', 5);
    c.advance(30);
    for (let i = 0; i < 100; i++) m.record('latency', 0.1);
    expect(m.snapshot().histograms.http_request_duration_seconds!.count).toBe(200);
    c.advance(35);
    const s = m.snapshot();
    expect(s.histograms.http_request_duration_seconds!.count).toBe(100);
    expect(s.p99LatencyMs).toBeCloseTo(100, 0);
    c.advance(60);
    const empty = m.snapshot();
    expect(empty.p95LatencyMs).toBeUndefined();
    expect(empty.histograms.http_request_duration_seconds!.count).toBe(0);
  });

  it('reports queue depth with its history, LLM 429 rate, CPU and memory as fractions', () => {
    const c = clock();
    const m = new Metrics({ now: c.now });
    let depth = 5;
    m.gauge('worker_queue_depth', () => depth);
    const llm = m.counter('llm_requests_total');
    const limited = m.counter('llm_rate_limited_total');
    const history: number[] = [];
    for (let i = 0; i < 5; i++) {
      c.advance(10);
      depth += 10;
      history.push(depth);
      llm.inc(10);
      limited.inc(1);
      m.snapshot();
    }
    c.advance(10);
    depth += 10;
    const s = m.snapshot();
    expect(s.queueDepth).toBe(depth);
    expect(s.queueDepthHistory).toEqual([...history, depth]);
    expect(s.llmRateLimitRate).toBeCloseTo(0.1, 10);
    expect(s.cpu).toBeGreaterThanOrEqual(0);
    expect(s.cpu).toBeLessThanOrEqual(1);
    expect(s.memory).toBeGreaterThan(0);
    expect(s.memory).toBeLessThanOrEqual(1);
    expect(s.cpuHistory.length).toBe(6);
  });

  it('burns real CPU and sees it, agreeing with an independent measure', () => {
    const m = new Metrics();
    m.snapshot();
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    const end = t0 + 200;
    let x = 0;
    while (performance.now() < end) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    const u1 = process.cpuUsage(u0);
    const t1 = performance.now();
    const s = m.snapshot();
    const expected = (u1.user + u1.system) / ((t1 - t0) * 1000 * availableParallelism());
    expect(s.cpu).toBeGreaterThan(0);
    // Same quantity over a slightly longer interval (the snapshot calls bracket ours).
    expect(Math.abs(s.cpu - expected)).toBeLessThan(0.05 + 0.25 * expected);
  });

  it('is what ScalingAdvisor.assess() takes: slow p95 and errors ask for a scale-up', () => {
    const c = clock();
    const m = new Metrics({ now: c.now });
    for (let i = 0; i < 200; i++) {
      m.record('requests', 1);
      m.record('latency', i < 180 ? 0.2 : 3.5); // p95 = 3.5 s > the seed's 2 s
      if (i % 20 === 0) m.record('errors', 1); // 5 % > the seed's 1 %
    }
    c.advance(15);
    const snapshot: ScalingSnapshot = m.snapshot();
    const advisor = new ScalingAdvisor({ now: c.now });
    const a = advisor.assess(snapshot);
    expect(a.scale).toBe('up');
    const firing = a.signals.filter((x) => x.firing).map((x) => x.indicator);
    expect(firing).toContain('p95-latency');
    expect(firing).toContain('error-rate');
  });

  it('a quiet service is not asked to scale up', () => {
    const c = clock();
    const m = new Metrics({ now: c.now });
    for (let i = 0; i < 200; i++) {
      m.record('requests', 1);
      m.record('latency', 0.05);
    }
    c.advance(15);
    const a = new ScalingAdvisor({ now: c.now }).assess({ ...m.snapshot(), cpu: 0.1, memory: 0.1 });
    expect(a.scale).not.toBe('up');
  });

  it('follows test fake timers, and recovers its clock once they are uninstalled', () => {
    vi.useFakeTimers();
    try {
      const m = new Metrics();
      m.record('latency', 0.5);
      expect(m.snapshot().latency.count).toBe(1);
      vi.advanceTimersByTime(70_000);
      expect(m.snapshot().latency.count).toBe(0);
      m.record('latency', 0.25);
      const s = m.snapshot();
      expect(s.latency.count).toBe(1);
      expect(s.latency.max).toBe(0.25);
    } finally {
      vi.useRealTimers();
    }
    // The shared clock's timer was a fake one: a new instance must still see fresh observations.
    const m = new Metrics();
    m.record('latency', 0.1);
    expect(m.snapshot().latency.count).toBe(1);
  });

  it('snapshots in a tight loop keep the sample ring bounded', () => {
    const c = clock();
    const m = new Metrics({ now: c.now, window: 60, windowSlots: 6 });
    m.counter('requests_total').inc();
    for (let i = 0; i < 10_000; i++) {
      c.advance(0.05);
      m.snapshot();
    }
    const samples = (m as unknown as { window: { samples: unknown[] } }).window.samples;
    expect(samples.length).toBeLessThanOrEqual(8);
  });
});

describe('/metrics over HTTP', () => {
  it('serves the exposition from a real node:http server, and it parses', async () => {
    const m = new Metrics();
    m.counter('cache_hits_total', { tier: 'l1' }).inc(3);
    m.counter('cache_misses_total', { tier: 'l1' }).inc(1);
    m.gauge('worker_queue_depth', () => 12);
    const h = m.histogram('resilience_call_seconds', { circuit: 'llm' });
    for (let i = 1; i <= 100; i++) h.observe(i / 100);
    for (let i = 0; i < 7; i++) m.record('requests', 1);
    const base = await serve(m.handler());
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    const fams = parsePrometheus(text);
    expect(sampleValue(fams, 'azscale_cache_hits_total', { tier: 'l1' })).toBe(3);
    expect(sampleValue(fams, 'azscale_worker_queue_depth')).toBe(12);
    expect(sampleValue(fams, 'azscale_http_requests_total')).toBe(7);
    expect(
      sampleValue(fams, 'azscale_resilience_call_seconds_bucket', { circuit: 'llm', le: '0.5' }),
    ).toBe(50);
    expect(sampleValue(fams, 'azscale_resilience_call_seconds_count', { circuit: 'llm' })).toBe(
      100,
    );
    for (const f of fams.values()) {
      expect(f.help.length).toBeGreaterThan(0);
      if (f.type === 'counter') expect(f.name.endsWith('_total')).toBe(true);
    }
    const promtool = spawnSync('promtool', ['--version']);
    if (promtool.error === undefined && promtool.status === 0) {
      // promtool check metrics reads the exposition on stdin and exits non-zero on problems.
      execFileSync('promtool', ['check', 'metrics'], { input: text });
    }
  });

  it('the parser used above does reject malformed expositions', () => {
    expect(() => parsePrometheus('x 1\n')).toThrow(/no TYPE/);
    expect(() => parsePrometheus('# TYPE x counter\nx{a="1} 1\n')).toThrow();
    expect(() => parsePrometheus('# TYPE x counter\nx 1\nx 2\n')).toThrow(/duplicate/);
    expect(() =>
      parsePrometheus(
        '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
      ),
    ).toThrow(/cumulative/);
    expect(() => parsePrometheus('# TYPE x counter\nx one\n')).toThrow(/bad value/);
  });
});
