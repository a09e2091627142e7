/**
 * An OpenTelemetry SDK set up for one test file: an AsyncLocalStorage context manager (so
 * parents follow `await`), a provider with an in-memory exporter, and teardown. Spans are read
 * with `tracing.exporter.getFinishedSpans()` before teardown (shutting an InMemorySpanExporter
 * down empties it).
 */
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll } from 'vitest';
import { disableTracing } from '../../src/observability/index.js';

/** The provider and exporter of {@link useInMemoryTracing}, valid inside tests. */
export interface InMemoryTracing {
  readonly provider: BasicTracerProvider;
  readonly exporter: InMemorySpanExporter;
}

/** Registers beforeAll/afterAll hooks that set up and tear down an in-memory OTel SDK. */
export function useInMemoryTracing(): InMemoryTracing {
  let provider: BasicTracerProvider | undefined;
  let exporter: InMemorySpanExporter | undefined;
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterAll(async () => {
    disableTracing();
    await provider?.shutdown();
    context.disable();
  });
  return {
    get provider() {
      if (!provider) throw new Error('useInMemoryTracing: read the provider inside a test');
      return provider;
    },
    get exporter() {
      if (!exporter) throw new Error('useInMemoryTracing: read the exporter inside a test');
      return exporter;
    },
  };
}

/** The parent span id of `s` (sdk-trace-base 2.x `parentSpanContext`, 1.x `parentSpanId`). */
export function parentSpanId(s: ReadableSpan): string | undefined {
  const v2 = (s as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext;
  return v2?.spanId ?? (s as unknown as { parentSpanId?: string }).parentSpanId;
}
