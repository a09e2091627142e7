/**
 * setupTracing({ exporter }) builds the SDK itself: spans of real Redis, PostgreSQL and queue
 * operations travel over OTLP/HTTP to a receiver this test runs (a node:http server decoding the
 * OTLP JSON payload), with the resource's service.name and the semantic-convention attributes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { isValidationError } from '../../src/core/errors.js';
import { DatabaseRouter } from '../../src/db/index.js';
import {
  annotateActiveSpan,
  disableTracing,
  setupTracing,
  withSpan,
} from '../../src/observability/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

type OtlpValue = {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
};
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: OtlpValue }[];
}
interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: OtlpValue }[] };
    scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[];
  }[];
}

function value(v: OtlpValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  return v.doubleValue;
}

function attrs(list: { key: string; value: OtlpValue }[] | undefined) {
  return Object.fromEntries((list ?? []).map((a) => [a.key, value(a.value)]));
}

/** An OTLP/HTTP traces receiver on loopback that keeps every request it is sent. */
async function startReceiver() {
  const requests: { contentType: string; body: OtlpRequest }[] = [];
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    return req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
  };
  const server: Server = createServer((req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      res.statusCode = 404;
      res.end();
      return;
    }
    read(req).then(
      (body) => {
        const contentType = String(req.headers['content-type']);
        requests.push({ contentType, body: JSON.parse(body.toString('utf8')) as OtlpRequest });
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      },
      () => {
        res.statusCode = 400;
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
  return { url, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const s = servers();
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
});

afterAll(async () => {
  disableTracing();
  await receiver.close();
});

describe("setupTracing({ exporter: 'otlp' })", () => {
  it('exports spans of Redis, PostgreSQL and the queue with semantic-convention attributes', async () => {
    const tracing = setupTracing({
      serviceName: 'otlp-checkout',
      exporter: 'otlp',
      otlp: { url: receiver.url },
      resourceAttributes: { 'deployment.environment.name': 'test' },
    });
    expect(tracing.enabled).toBe(true);
    expect(tracing.provider).toBeDefined();
    const redisPort = Number(new URL(s.redisUrl).port);
    const pgPrimary = new URL(s.pgPrimaryUrl);

    const cache = new DistributedCache({
      redis: s.redisUrl,
      prefix: uniquePrefix('otlp'),
      backendTimeout: 10,
    });
    const sessions = new DistributedSessionManager({
      redis: s.redisUrl,
      prefix: uniquePrefix('otlp'),
    });
    const db = new DatabaseRouter({ primary: s.pgPrimaryUrl, healthCheckInterval: 0 });
    const queueName = `otlp-${randomBytes(4).toString('hex')}`;
    const q = new TaskQueue({ name: queueName, redis: s.redisUrl, prefix: 'azs-test-otlp:' });
    const w = new BackgroundWorker<{ n: number }, number>({
      queue: q,
      visibilityTimeout: 5,
      handler: async (d) => d.n + 1,
    });
    let taskId = '';
    try {
      await cache.set('k', 'v', 60);
      expect(await cache.get('k')).toBe('v');
      const sid = sessions.newSessionId();
      await sessions.appendMessage(sid, { role: 'user', content: 'hi' });
      const { rows } = await db.write('SELECT 1 AS one');
      expect(rows[0]).toEqual({ one: 1 });
      taskId = await q.submitTask({ n: 1 });
      await w.start();
      expect(await q.waitForResult(taskId, { timeout: 20 })).toBe(2);
    } finally {
      await w.stop({ timeout: 5 });
      await Promise.all([q.close(), cache.close(), sessions.close(), db.close()]);
      await tracing.shutdown(); // flushes the batch to the receiver
    }

    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(receiver.requests[0]?.contentType).toMatch(/^application\/json/);
    const resources = receiver.requests.flatMap((r) => r.body.resourceSpans);
    for (const rs of resources) {
      expect(attrs(rs.resource.attributes)).toMatchObject({
        'service.name': 'otlp-checkout',
        'deployment.environment.name': 'test',
      });
    }
    const spans = resources.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    const find = (name: string) => {
      const found = spans.filter((x) => x.name === name);
      if (found.length === 0) {
        throw new Error(`no ${name} among ${spans.map((x) => x.name).join(', ')}`);
      }
      return found;
    };

    for (const name of ['azscale.cache.set', 'azscale.cache.get', 'azscale.session.append']) {
      for (const span of find(name)) {
        expect(attrs(span.attributes), name).toMatchObject({
          'db.system.name': 'redis',
          'server.address': '127.0.0.1',
          'server.port': redisPort,
          'azscale.service.name': 'otlp-checkout',
        });
      }
    }
    const [dbSpan] = find('azscale.db.write');
    expect(dbSpan?.kind).toBe(3); // OTLP SPAN_KIND_CLIENT
    expect(attrs(dbSpan?.attributes)).toMatchObject({
      'db.system.name': 'postgresql',
      'server.address': pgPrimary.hostname,
      'server.port': Number(pgPrimary.port),
      'db.namespace': pgPrimary.pathname.slice(1) || 'postgres',
    });
    const [submit] = find('azscale.worker.submit');
    expect(submit?.kind).toBe(4); // PRODUCER
    expect(attrs(submit?.attributes)).toMatchObject({
      'messaging.system': 'redis',
      'messaging.destination.name': queueName,
      'messaging.operation.type': 'send',
      'messaging.message.id': taskId,
    });
    const [processed] = find('azscale.worker.process');
    expect(processed?.kind).toBe(5); // CONSUMER
    expect(attrs(processed?.attributes)).toMatchObject({
      'messaging.system': 'redis',
      'messaging.destination.name': queueName,
      'messaging.operation.type': 'process',
      'messaging.message.id': taskId,
      'messaging.consumer.group.name': 'workers',
    });
    // The consumer's span joins the producer's trace (traceparent travels with the task).
    expect(processed?.traceId).toBe(submit?.traceId);
  });

  it('shutdown() unregisters the global provider it registered', async () => {
    const tracing = setupTracing({
      serviceName: 'x',
      exporter: 'otlp',
      otlp: { url: receiver.url },
    });
    expect(trace.getTracerProvider()).not.toBe(undefined);
    const before = receiver.requests.length;
    await withSpan('azscale.test.op', undefined, async () => undefined);
    await tracing.shutdown();
    expect(receiver.requests.length).toBe(before + 1);
    // After shutdown the API's global provider is the no-op one again: a new setup may register.
    const again = setupTracing({ serviceName: 'y', exporter: 'otlp', otlp: { url: receiver.url } });
    await withSpan('azscale.test.again', undefined, () => undefined);
    await again.shutdown();
    const last = receiver.requests.at(-1)?.body.resourceSpans[0];
    expect(attrs(last?.resource.attributes)['service.name']).toBe('y');
  });
});

describe('setupTracing({ exporter }) with an exporter object, and validation', () => {
  it('sends spans to a custom exporter, with the resource service.name', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setupTracing({ serviceName: 'custom-svc', exporter });
    await withSpan('azscale.test.custom', { 'azscale.k': 1 }, async () => {
      await new Promise((r) => setTimeout(r, 1));
      annotateActiveSpan({ 'db.system.name': 'redis' }); // after an await: the context manager
    });
    await tracing.forceFlush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('azscale.test.custom');
    expect(span?.resource.attributes['service.name']).toBe('custom-svc');
    expect(span?.attributes).toMatchObject({ 'azscale.k': 1, 'db.system.name': 'redis' });
    await tracing.shutdown();
  });

  it('register: false leaves the global provider alone', async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setupTracing({ serviceName: 'quiet', exporter, register: false });
    trace.getTracer('app').startSpan('app.outside').end();
    withSpan('azscale.test.inside', undefined, () => undefined);
    await tracing.forceFlush();
    expect(exporter.getFinishedSpans().map((x) => x.name)).toEqual(['azscale.test.inside']);
    await tracing.shutdown();
  });

  it("annotateActiveSpan leaves the app's own spans alone", async () => {
    const exporter = new InMemorySpanExporter();
    const tracing = setupTracing({ serviceName: 'own', exporter });
    const appTracer = trace.getTracer('app');
    await appTracer.startActiveSpan('app.op', async (span) => {
      annotateActiveSpan({ 'db.system.name': 'redis' });
      span.end();
    });
    await tracing.forceFlush();
    const app = exporter.getFinishedSpans().find((x) => x.name === 'app.op');
    expect(app).toBeDefined();
    expect(app?.attributes['db.system.name']).toBeUndefined();
    await tracing.shutdown();
  });

  it('refuses bad options with a ValidationError naming the option', () => {
    const cases: [unknown, string][] = [
      [{ serviceName: 's', exporter: 'zipkin' }, 'exporter'],
      [{ serviceName: 's', exporter: { export: 1 } }, 'exporter'],
      [{ serviceName: 's', exporter: 'otlp', otlp: { url: 'ftp://x' } }, 'otlp.url'],
      [{ serviceName: 's', exporter: 'otlp', otlp: { url: 42 } }, 'otlp.url'],
      [{ serviceName: 's', exporter: 'otlp', otlp: 'http://x' }, 'otlp'],
      [
        {
          serviceName: 's',
          exporter: 'console',
          tracerProvider: { getTracer: () => ({ startActiveSpan: () => undefined }) },
        },
        'exporter',
      ],
    ];
    for (const [opts, option] of cases) {
      let err: unknown;
      try {
        setupTracing(opts as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(opts)).toBe(true);
      expect((err as { option?: string }).option).toBe(option);
    }
  });
});

describe("setupTracing({ exporter: 'console' }) and missing SDK packages (child processes)", () => {
  const run = (script: string, preload?: string) =>
    execFileSync(
      process.execPath,
      [
        ...(preload ? ['--require', join(here, 'fixtures', preload)] : []),
        '--import',
        'tsx',
        join(here, 'fixtures', script),
      ],
      { cwd: root, env: { ...process.env }, timeout: 60_000, encoding: 'utf8' },
    );

  it('prints finished spans with the resource service.name to stdout', () => {
    const out = run('console-exporter.ts');
    expect(out).toContain("name: 'azscale.test.console'");
    expect(out).toContain("'service.name': 'console-svc'");
    expect(out).toContain("'azscale.k': 'v'");
  });

  it('names the package to install when the SDK is missing', () => {
    const out = JSON.parse(run('missing-sdk.ts', 'block-otel.cjs')) as Record<
      string,
      { validation: boolean; option: string; message: string }
    >;
    for (const exporter of ['otlp', 'console']) {
      expect(out[exporter]?.validation, exporter).toBe(true);
      expect(out[exporter]?.option).toBe('exporter');
      expect(out[exporter]?.message).toMatch(/npm install @opentelemetry\/sdk-trace-base/);
    }
  });
});
