/**
 * `npm run bench [-- <module> ...]`: runs bench/<module>.bench.ts files side by side with the raw
 * library or peer each competes with, against real servers (started here unless REDIS_URL,
 * REDIS_CLUSTER_NODES, PG_PRIMARY_URL and PG_REPLICA_URLS name running ones), and prints one table.
 * `--json <file>` also writes the rows as JSON. `--report` writes docs/benchmarks.md and
 * docs/img/benchmarks.svg (`--report-dir <dir>` puts them elsewhere, for a trial run).
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startPostgres, startRedisCluster, startRedisServer } from '../test/harness/servers.js';
import { type BenchContext, type BenchRow, type BenchSuite, formatTable } from './lib.js';
import { machineInfo, renderMarkdown, renderSvg } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const jsonAt = args.indexOf('--json');
const jsonFile = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
const reportDirAt = args.indexOf('--report-dir');
const reportDir =
  reportDirAt >= 0
    ? args[reportDirAt + 1]
    : args.includes('--report')
      ? join(here, '..', 'docs')
      : undefined;
const valueAt = new Set([jsonAt, reportDirAt].filter((i) => i >= 0).map((i) => i + 1));
const wanted = args.filter((a, i) => !a.startsWith('--') && !valueAt.has(i));

const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.bench\.ts$/, '')))
  .sort();
if (files.length === 0) {
  console.error(`no bench files match ${wanted.join(', ') || '(any)'} in bench/`);
  process.exit(1);
}

const stops: (() => Promise<void>)[] = [];
async function context(): Promise<BenchContext> {
  const env = process.env;
  const [redisUrl, clusterNodes, pg] = await Promise.all([
    env.REDIS_URL
      ? env.REDIS_URL
      : startRedisServer().then((s) => {
          stops.push(s.stop);
          return s.url;
        }),
    env.REDIS_CLUSTER_NODES
      ? env.REDIS_CLUSTER_NODES.split(',').map((p) => {
          const [host, port] = p.split(':');
          return { host: host ?? '127.0.0.1', port: Number(port) };
        })
      : startRedisCluster(3).then((c) => {
          stops.push(c.stop);
          return c.nodes;
        }),
    env.PG_PRIMARY_URL && env.PG_REPLICA_URLS
      ? { primaryUrl: env.PG_PRIMARY_URL, replicaUrls: env.PG_REPLICA_URLS.split(',') }
      : startPostgres().then((p) => {
          stops.push(p.stop);
          return p;
        }),
  ]);
  return { redisUrl, clusterNodes, pgPrimaryUrl: pg.primaryUrl, pgReplicaUrls: pg.replicaUrls };
}

const rows: BenchRow[] = [];
try {
  const ctx = await context();
  for (const f of files) {
    const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: BenchSuite };
    process.stderr.write(`running ${f} ...\n`);
    const got = await mod.default(ctx);
    rows.push(...got);
    process.stderr.write(`${formatTable(got)}\n\n`);
  }
} finally {
  await Promise.allSettled(stops.map((s) => s()));
}
console.log(`\nazscale bench (node ${process.version}, ${new Date().toISOString()})\n`);
console.log(formatTable(rows));
console.log('\nratio = our time per op / theirs (below 1: we are faster).');
if (jsonFile) writeFileSync(jsonFile, JSON.stringify(rows, null, 2));
if (reportDir) {
  mkdirSync(join(reportDir, 'img'), { recursive: true });
  const command = `npm run bench -- ${['--report', ...wanted].join(' ')}`;
  writeFileSync(join(reportDir, 'benchmarks.md'), renderMarkdown(rows, machineInfo(), command));
  writeFileSync(join(reportDir, 'img', 'benchmarks.svg'), renderSvg(rows));
  console.log(`report: ${join(reportDir, 'benchmarks.md')} and img/benchmarks.svg`);
}
process.exit(0);
