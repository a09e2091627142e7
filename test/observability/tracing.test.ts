import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  type TraceCarrier,
  currentTraceContext,
  disableTracing,
  isTracingEnabled,
  setupTracing,
  withSpan,
  withTraceContext,
} from '../../src/observability/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

let exporter: InMemorySpanExporter;
let provider: BasicTracerProvider;
let contextManager: AsyncLocalStorageContextManager;

beforeAll(() => {
  contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  exporter = new InMemorySpanExporter();
  provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
});

afterAll(async () => {
  disableTracing();
  await provider.shutdown();
  context.disable();
});

afterEach(() => {
  disableTracing();
  exporter.reset();
});

function parentId(s: ReadableSpan): string | undefined {
  const v2 = (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext;
  return v2?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId;
}

function byName(spans: ReadableSpan[], name: string): ReadableSpan {
  const s = spans.find((x) => x.name === name);
  if (!s) throw new Error(`no span ${name} among ${spans.map((x) => x.name).join(', ')}`);
  return s;
}

/** The spans as an indented tree, children in start order. */
function tree(spans: ReadableSpan[]): string {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const kids = new Map<string | undefined, ReadableSpan[]>();
  for (const s of spans) {
    const p = parentId(s);
    const key = p && ids.has(p) ? p : undefined;
    kids.set(key, [...(kids.get(key) ?? []), s]);
  }
  const lines: string[] = [];
  const walk = (p: string | undefined, depth: number) => {
    const list = (kids.get(p) ?? []).sort(
      (a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1],
    );
    for (const s of list) {
      lines.push(`${'  '.repeat(depth)}${s.name}`);
      walk(s.spanContext().spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join('\n');
}

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('withSpan before setupTracing', () => {
  it('is a plain call with a no-op span, and records nothing', async () => {
    expect(isTracingEnabled()).toBe(false);
    const v = withSpan('azscale.cache.get', { 'azscale.key_count': 1 }, (span) => {
      expect(span.isRecording()).toBe(false);
      span.setAttribute('azscale.cache.hit', true);
      span.setAttributes({ a: 1 });
      span.addEvent('e');
      return 7;
    });
    expect(v).toBe(7);
    await expect(withSpan('x', undefined, async () => 'a')).resolves.toBe('a');
    expect(() =>
      withSpan('x', undefined, () => {
        throw new Error('same error');
      }),
    ).toThrow('same error');
    expect(currentTraceContext()).toBeUndefined();
    expect(withTraceContext({ traceparent: 'bogus' }, () => 3)).toBe(3);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
  });
});

describe('setupTracing', () => {
  it('validates its options', () => {
    for (const bad of [undefined, {}, { serviceName: '' }, { serviceName: 3 }]) {
      try {
        setupTracing(bad as never);
        throw new Error('expected a ValidationError');
      } catch (e) {
        expect(isValidationError(e)).toBe(true);
      }
    }
    try {
      setupTracing({ serviceName: 's', tracerProvider: {} as never });
      throw new Error('expected a ValidationError');
    } catch (e) {
      expect(isValidationError(e)).toBe(true);
      expect((e as { option?: string }).option).toBe('tracerProvider');
    }
  });

  it('shows the span tree of one request through cache, limiter and worker', async () => {
    const tracing = setupTracing({ serviceName: 'checkout', tracerProvider: provider });
    expect(tracing.enabled).toBe(true);
    expect(isTracingEnabled()).toBe(true);

    // A task queue between the request and a worker loop: the task carries the trace context,
    // as azscale's worker does, and is processed later in a different async context.
    const queue: { id: string; trace: TraceCarrier | undefined; resolve: (v: string) => void }[] =
      [];
    let stop = false;
    const workerLoop = (async () => {
      while (!stop) {
        const task = queue.shift();
        if (!task) {
          await tick();
          continue;
        }
        await withTraceContext(task.trace, () =>
          withSpan(
            'azscale.worker.process',
            { 'azscale.task_id': task.id },
            async () => {
              await tick();
              await withSpan('azscale.cache.set', { 'azscale.key_count': 1 }, async () => tick());
              task.resolve(`done ${task.id}`);
            },
            { kind: 'consumer' },
          ),
        );
      }
    })();

    // The app's own tracer on the same provider (what NodeSDK would register globally).
    const app = provider.getTracer('app');
    const server: Server = createServer((req, res) => {
      app.startActiveSpan(`GET ${req.url}`, async (root) => {
        const cached = await withSpan(
          'azscale.cache.get',
          { 'azscale.key_count': 1 },
          async (span) => {
            await withSpan('azscale.cache.l2.get', { 'azscale.node': '127.0.0.1:6379' }, tick, {
              kind: 'client',
            });
            span.setAttribute('azscale.cache.hit', false);
            return undefined;
          },
        );
        const result = await withSpan(
          'azscale.resilience.limiter.run',
          { 'azscale.limiter': 'llm' },
          async () =>
            withSpan(
              'azscale.worker.enqueue',
              { 'azscale.task_id': 't-1' },
              () =>
                new Promise<string>((resolve) => {
                  queue.push({ id: 't-1', trace: currentTraceContext(), resolve });
                }),
              { kind: 'producer' },
            ),
        );
        res.end(`${cached ?? 'miss'} ${result}`);
        root.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/agent`);
      expect(await res.text()).toBe('miss done t-1');
    } finally {
      stop = true;
      await workerLoop;
      await new Promise((r) => server.close(r));
    }

    const spans = exporter.getFinishedSpans();
    expect(tree(spans)).toBe(
      [
        'GET /agent',
        '  azscale.cache.get',
        '    azscale.cache.l2.get',
        '  azscale.resilience.limiter.run',
        '    azscale.worker.enqueue',
        '      azscale.worker.process',
        '        azscale.cache.set',
      ].join('\n'),
    );
    // One trace, every azscale span attributed, kinds as asked.
    const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
    expect(traceIds.size).toBe(1);
    const process_ = byName(spans, 'azscale.worker.process');
    expect(process_.attributes['azscale.task_id']).toBe('t-1');
    expect(process_.attributes['azscale.service.name']).toBe('checkout');
    expect(process_.kind).toBe(4);
    expect(byName(spans, 'azscale.worker.enqueue').kind).toBe(3);
    expect(byName(spans, 'azscale.cache.l2.get').kind).toBe(2);
    expect(byName(spans, 'azscale.cache.l2.get').attributes['azscale.node']).toBe('127.0.0.1:6379');
    expect(byName(spans, 'azscale.cache.get').attributes['azscale.cache.hit']).toBe(false);
    expect(byName(spans, 'azscale.cache.get').attributes['azscale.key_count']).toBe(1);
    // Every span ended after its children. The SDK anchors each span's start to Date.now()
    // (millisecond precision), so end times of different spans are comparable to ~1 ms only.
    for (const s of spans) {
      const p = spans.find((x) => x.spanContext().spanId === parentId(s));
      if (p && p.name !== 'azscale.worker.enqueue') {
        const end = (t: [number, number]) => t[0] * 1e9 + t[1];
        expect(end(p.endTime), `${p.name} ends after ${s.name}`).toBeGreaterThanOrEqual(
          end(s.endTime) - 2e6,
        );
      }
    }
  });

  it('records a throw or rejection on the span and passes it on unchanged', async () => {
    setupTracing({ serviceName: 'svc', tracerProvider: provider });
    const boom = new Error('redis down');
    await expect(
      withSpan('azscale.cache.get', {}, async () => {
        await tick();
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(() =>
      withSpan('azscale.session.get', {}, () => {
        throw boom;
      }),
    ).toThrow(boom);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).sort()).toEqual(['azscale.cache.get', 'azscale.session.get']);
    for (const s of spans) {
      expect(s.status.code).toBe(2);
      expect(s.status.message).toBe('redis down');
      expect(s.events.some((e) => e.name === 'exception')).toBe(true);
      expect(s.ended).toBe(true);
    }
  });

  it('without a tracerProvider uses the global one; disable() turns spans off again', () => {
    const globalExporter = new InMemorySpanExporter();
    const globalProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(globalExporter)],
    });
    trace.setGlobalTracerProvider(globalProvider);
    try {
      const t = setupTracing({ serviceName: 'svc' });
      expect(t.enabled).toBe(true);
      withSpan('azscale.db.query', { 'azscale.node': 'primary' }, () => 1);
      expect(globalExporter.getFinishedSpans().map((s) => s.name)).toEqual(['azscale.db.query']);
      t.disable();
      expect(isTracingEnabled()).toBe(false);
      withSpan('azscale.db.query', {}, () => 1);
      expect(globalExporter.getFinishedSpans()).toHaveLength(1);
    } finally {
      trace.disable();
    }
  });

  it('a stale handle does not disable a newer setup', () => {
    const first = setupTracing({ serviceName: 'a', tracerProvider: provider });
    setupTracing({ serviceName: 'b', tracerProvider: provider });
    first.disable();
    expect(isTracingEnabled()).toBe(true);
  });

  it('carries the trace context as a W3C traceparent', () => {
    setupTracing({ serviceName: 'svc', tracerProvider: provider });
    let carrier: TraceCarrier | undefined;
    withSpan('azscale.worker.enqueue', {}, () => {
      carrier = currentTraceContext();
    });
    expect(carrier?.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    withTraceContext(carrier, () => withSpan('azscale.worker.process', {}, () => 1));
    const spans = exporter.getFinishedSpans();
    const enq = byName(spans, 'azscale.worker.enqueue');
    const proc = byName(spans, 'azscale.worker.process');
    expect(proc.spanContext().traceId).toBe(enq.spanContext().traceId);
    expect(parentId(proc)).toBe(enq.spanContext().spanId);
    // A malformed carrier starts a new trace instead of failing.
    withTraceContext({ traceparent: 'nonsense' }, () => withSpan('azscale.lonely', {}, () => 1));
    expect(parentId(byName(exporter.getFinishedSpans(), 'azscale.lonely'))).toBeUndefined();
  });
});

describe('@opentelemetry/api is an optional peer', () => {
  const run = (script: string) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--require',
          join(here, 'fixtures', 'block-otel.cjs'),
          '--import',
          'tsx',
          join(here, 'fixtures', script),
        ],
        { cwd: root, env: { ...process.env }, timeout: 30_000, encoding: 'utf8' },
      ),
    ) as Record<string, unknown>;

  it('without it nothing breaks: spans are plain calls, metrics work', () => {
    const out = run('no-otel.ts');
    expect(out.attemptsAfterImport).toEqual([]);
    expect(out.syncResult).toBe('plain');
    expect(out.enabled).toBe(false);
    expect(out.reason).toMatch(/@opentelemetry\/api is not installed/);
    expect(out.isTracingEnabled).toBe(false);
    expect(out.asyncResult).toBe(42);
    expect(out.error).toBe('passes through');
    expect(out.carrier).toBeNull();
    expect(out.withCarrier).toBe('ran');
    expect(out.metricsOk).toBe(true);
    // setupTracing did look for it (and found nothing).
    expect((out.attemptsAfterSetup as string[]).length).toBeGreaterThan(0);
  });

  it('importing and using azscale/observability loads neither OpenTelemetry nor prom-client until Prometheus output is asked for', () => {
    const out = JSON.parse(
      execFileSync(process.execPath, ['--import', 'tsx', join(here, 'fixtures', 'load-check.ts')], {
        cwd: root,
        env: { ...process.env },
        timeout: 30_000,
        encoding: 'utf8',
      }),
    );
    expect(out.before).toEqual({ otel: 0, prom: 0 });
    // prom-client 15 itself requires @opentelemetry/api (for exemplars) when it loads.
    expect(out.after.prom).toBeGreaterThan(0);
  });

  it('no source file of the module imports it as a value', () => {
    const dir = join(root, 'src', 'observability');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(text).not.toMatch(/^import\s+(?!type\b)[^;]*['"]@opentelemetry\//m);
    }
  });
});
