/** Resilience primitives report spans (azscale.limiter.run, azscale.circuit.call) under the caller's span. */
import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { disableTracing, setupTracing } from '../../src/observability/index.js';
import { ConcurrencyLimiter, circuit } from '../../src/resilience/index.js';
import { parentSpanId, useInMemoryTracing } from '../harness/tracing.js';

const tracing = useInMemoryTracing();

describe('resilience spans', () => {
  it('limiter and circuit calls are spans under the active span, and none before setup', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 2, key: 'llm:test' });
    const guarded = circuit(async (x: number) => x * 2, {
      name: `trace-${Date.now()}`,
      failureThreshold: 3,
      recoveryTimeout: 1,
    });
    expect(await limiter.run(() => guarded(1))).toBe(2);
    expect(tracing.exporter.getFinishedSpans()).toHaveLength(0);

    setupTracing({ serviceName: 'svc', tracerProvider: tracing.provider });
    const tracer = tracing.provider.getTracer('test');
    await tracer.startActiveSpan('request', async (root) => {
      expect(await limiter.run(() => guarded(21))).toBe(42);
      root.end();
    });
    const spans = tracing.exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === 'request');
    const lim = spans.find((s) => s.name === 'azscale.limiter.run');
    const cir = spans.find((s) => s.name === 'azscale.circuit.call');
    expect(root && lim && cir).toBeTruthy();
    expect(parentSpanId(lim as ReadableSpan)).toBe(root?.spanContext().spanId);
    expect(parentSpanId(cir as ReadableSpan)).toBe(lim?.spanContext().spanId);
    expect(lim?.attributes['azscale.limiter.key']).toBe('llm:test');
    expect(trace.getActiveSpan()).toBeUndefined();
    disableTracing();
  });
});
