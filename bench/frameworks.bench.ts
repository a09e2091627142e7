/**
 * Frameworks: the cost of azscale's RED metrics on a hello-world route (`GET /hello/:name`),
 * measured with autocannon over real HTTP, side by side in one run, on Fastify (azscalePlugin)
 * and Express (requestMetrics): against the same app without metrics (target: at most 5 % fewer
 * requests per second, ratio <= 1.05) and against fastify-metrics / express-prom-bundle (target:
 * no slower, ratio <= 1.0). Each app runs in its own child process (this file with `--serve`),
 * so the load generator does not share the server's event loop; the variants alternate over
 * rounds and each keeps its best round.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BenchRow, BenchSuite, Measurement } from './lib.js';

type Variant =
  | 'fastify-none'
  | 'fastify-azscale'
  | 'fastify-metrics'
  | 'express-none'
  | 'express-azscale'
  | 'express-prom-bundle';

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const CONNECTIONS = 50;

async function serve(variant: Variant): Promise<void> {
  let port: number;
  if (variant.startsWith('fastify')) {
    const { default: Fastify } = await import('fastify');
    const app = Fastify();
    if (variant === 'fastify-azscale') {
      const { azscalePlugin } = await import('../src/fastify/index.js');
      const { Metrics } = await import('../src/observability/index.js');
      await app.register(azscalePlugin, { metrics: new Metrics() });
    } else if (variant === 'fastify-metrics') {
      const { default: fastifyMetrics } = await import('fastify-metrics');
      await app.register(fastifyMetrics as never, { endpoint: '/metrics' });
    }
    app.get<{ Params: { name: string } }>('/hello/:name', async (req) => ({
      hello: req.params.name,
    }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  } else {
    const { default: express } = await import('express');
    const app = express();
    if (variant === 'express-azscale') {
      const { requestMetrics } = await import('../src/express/index.js');
      const { Metrics } = await import('../src/observability/index.js');
      app.use(requestMetrics({ metrics: new Metrics() }));
    } else if (variant === 'express-prom-bundle') {
      const { default: promBundle } = await import('express-prom-bundle');
      app.use(promBundle({ includeMethod: true, includePath: true, includeStatusCode: true }));
    }
    app.get('/hello/:name', (req, res) => {
      res.json({ hello: req.params.name });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    port = (server.address() as AddressInfo).port;
  }
  process.stdout.write(`port ${port}\n`);
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] as Variant);
}

interface Server {
  url: string;
  child: ChildProcess;
}

function start(variant: Variant): Promise<Server> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', variant],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve({ url: `http://127.0.0.1:${m[1]}`, child });
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited ${code}`)));
  });
}

async function load(url: string): Promise<Measurement> {
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({
    url: `${url}/hello/world`,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${url}: ${r.non2xx} non-2xx, ${r.errors} errors`);
  return {
    opsPerSec: r.requests.average,
    meanMs: r.latency.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    iterations: r.requests.total,
  };
}

function row(
  kase: string,
  ours: Measurement,
  theirsLabel: string,
  theirs: Measurement,
  maxRatio: number,
): BenchRow {
  const ratio = theirs.opsPerSec / ours.opsPerSec;
  return {
    group: 'frameworks',
    case: kase,
    ours,
    theirsLabel,
    theirs,
    ratio,
    target: `<= ${maxRatio}x`,
    met: ratio <= maxRatio,
  };
}

const suite: BenchSuite = async () => {
  const rows: BenchRow[] = [];
  for (const fw of ['fastify', 'express'] as const) {
    const variants: Variant[] =
      fw === 'fastify'
        ? ['fastify-none', 'fastify-azscale', 'fastify-metrics']
        : ['express-none', 'express-azscale', 'express-prom-bundle'];
    const servers = await Promise.all(variants.map(start));
    try {
      const best = new Map<Variant, Measurement>();
      for (const s of servers) await load(s.url); // warm-up
      for (let round = 0; round < ROUNDS; round++) {
        for (const [i, v] of variants.entries()) {
          const m = await load(servers[i]!.url);
          const prev = best.get(v);
          if (!prev || m.opsPerSec > prev.opsPerSec) best.set(v, m);
        }
      }
      const [none, ours, peer] = variants.map((v) => best.get(v)!) as [
        Measurement,
        Measurement,
        Measurement,
      ];
      const name =
        fw === 'fastify' ? 'Fastify azscalePlugin RED metrics' : 'Express requestMetrics';
      rows.push(row(`${name}, hello world`, ours, `${fw}, no metrics`, none, 1.05));
      rows.push(
        row(
          `${name}, hello world`,
          ours,
          fw === 'fastify' ? 'fastify-metrics' : 'express-prom-bundle',
          peer,
          1.0,
        ),
      );
    } finally {
      for (const s of servers) s.child.kill('SIGKILL');
    }
  }
  return rows;
};

export default suite;
