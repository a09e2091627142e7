import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseRouter } from '../../src/db/index.js';
import { disableTracing, setupTracing } from '../../src/observability/index.js';
import { servers } from '../harness/env.js';

const s = servers();
let exporter: InMemorySpanExporter;
let provider: BasicTracerProvider;
let db: DatabaseRouter;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  exporter = new InMemorySpanExporter();
  provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  db = new DatabaseRouter({
    primary: s.pgPrimaryUrl,
    replicas: s.pgReplicaUrls,
    healthCheckInterval: 0,
    pool: { poolSize: 1, maxOverflow: 1 },
  });
});

afterAll(async () => {
  disableTracing();
  await db.close();
  await provider.shutdown();
  context.disable();
});

function parentId(span: ReadableSpan): string | undefined {
  const v2 = (span as unknown as { parentSpanContext?: { spanId: string } }).parentSpanContext;
  return v2?.spanId ?? (span as unknown as { parentSpanId?: string }).parentSpanId;
}

describe('DatabaseRouter spans', () => {
  it('emits azscale.db.* client spans with the serving node, under the caller span', async () => {
    setupTracing({ serviceName: 'db-test', tracerProvider: provider });
    const tracer = provider.getTracer('test');
    await tracer.startActiveSpan('request', async (parent) => {
      await db.read('SELECT 1');
      await db.write('SELECT 1');
      await db.transaction(async (c) => c.query('SELECT 1'), { readOnly: true });
      await db.read('SELECT * FROM azs_no_such_table').catch(() => undefined);
      parent.end();
    });
    const spans = exporter.getFinishedSpans();
    const parent = spans.find((x) => x.name === 'request');
    const db1 = spans.filter((x) => x.name.startsWith('azscale.db.'));
    expect(db1.map((x) => x.name)).toEqual([
      'azscale.db.read',
      'azscale.db.write',
      'azscale.db.transaction',
      'azscale.db.read',
    ]);
    for (const x of db1) expect(parentId(x)).toBe(parent?.spanContext().spanId);
    expect(db1[0]?.attributes['azscale.db.node']).toBe('replica-0');
    expect(db1[1]?.attributes['azscale.db.node']).toBe('primary');
    expect(db1[2]?.attributes['azscale.db.node']).toBe('replica-0');
    expect(db1[2]?.attributes['azscale.db.read_only']).toBe(true);
    expect(db1[3]?.status.code).toBe(2); // ERROR
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
