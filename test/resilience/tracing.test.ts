/** Resilience primitives report spans (azscale.limiter.run, azscale.circuit.call) under the caller's span. */
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disableTracing, setupTracing } from '../../src/observability/index.js';
import { ConcurrencyLimiter, circuit } from '../../src/resilience/index.js';

let exporter: InMemorySpanExporter;
let provider: BasicTracerProvider;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  exporter = new InMemorySpanExporter();
  provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
});
afterAll(async () => {
  disableTracing();
  await provider.shutdown();
  context.disable();
});

function parentId(s: ReadableSpan): string | undefined {
  const v2 = (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext;
  return v2?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId;
}

describe('resilience spans', () => {
  it('limiter and circuit calls are spans under the active span, and none before setup', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 2, key: 'llm:test' });
    const guarded = circuit(async (x: number) => x * 2, {
      name: `trace-${Date.now()}`,
      failureThreshold: 3,
      recoveryTimeout: 1,
    });
    expect(await limiter.run(() => guarded(1))).toBe(2);
    expect(exporter.getFinishedSpans()).toHaveLength(0);

    setupTracing({ serviceName: 'svc', tracerProvider: provider });
    const tracer = provider.getTracer('test');
    await tracer.startActiveSpan('request', async (root) => {
      expect(await limiter.run(() => guarded(21))).toBe(42);
      root.end();
    });
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'request');
    const lim = spans.find((s) => s.name === 'azscale.limiter.run');
    const cir = spans.find((s) => s.name === 'azscale.circuit.call');
    expect(root && lim && cir).toBeTruthy();
    expect(parentId(lim as ReadableSpan)).toBe(root?.spanContext().spanId);
    expect(parentId(cir as ReadableSpan)).toBe(lim?.spanContext().spanId);
    expect(lim?.attributes['azscale.limiter.key']).toBe('llm:test');
    expect(trace.getActiveSpan()).toBeUndefined();
    disableTracing();
  });
});
