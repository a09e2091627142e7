/**
 * A minimal service wired for observability: Prometheus /metrics, /healthz and /readyz probes, and
 * OpenTelemetry spans when @opentelemetry/sdk-trace-base is installed. Run it with
 * `node --import tsx examples/observability/server.ts` and open http://127.0.0.1:3000/metrics.
 */
import { createServer } from 'node:http';
import { HealthRegistry, Metrics, setupTracing, withSpan } from '../../src/observability/index.js';

const metrics = new Metrics();
const health = new HealthRegistry({ metrics, timeout: 1 });
let accepting = true;
health.register('accepting', () => accepting);

// Spans only when a tracer provider is registered (NodeSDK etc.); a no-op otherwise.
setupTracing({ serviceName: 'example' });

const requests = metrics.counter('http_requests_total', { route: '/work' });
const errors = metrics.counter('http_errors_total', { route: '/work' });
const latency = metrics.histogram('http_request_duration_seconds', { route: '/work' });
const metricsHandler = metrics.handler();
const healthHandler = health.handler();

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/metrics') return metricsHandler(req, res);
  if (path === '/healthz' || path === '/readyz') return healthHandler(req, res);
  if (path === '/scaling') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(metrics.snapshot()));
    return;
  }
  const start = performance.now();
  withSpan('example.work', { route: '/work' }, async () => {
    await new Promise((r) => setTimeout(r, Math.random() * 50));
    if (Math.random() < 0.02) throw new Error('unlucky');
    return 'ok';
  })
    .then(
      (body) => res.end(body),
      () => {
        errors.inc();
        res.statusCode = 500;
        res.end('error');
      },
    )
    .finally(() => {
      requests.inc();
      latency.observe((performance.now() - start) / 1000);
    });
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
process.once('SIGTERM', () => {
  accepting = false; // readiness goes down first, then the server drains
  server.close();
});
