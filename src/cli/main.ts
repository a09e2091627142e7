#!/usr/bin/env node
/**
 * The `azscale` command line: worker sizing, presets, Kubernetes manifests and scaling advice.
 *
 *   azscale workers [--workload io|cpu] [--cpus N] [--max-workers N]
 *   azscale preset <small|medium|large|xlarge> [--json]
 *   azscale manifests --scale large --regions us-east,eu-west --image app:1.0 [--only hpa]
 *   azscale advise --metrics http://host:port/metrics [--scale large] [--json]
 *   azscale dashboard --redis URL --queue NAME [--queue NAME ...] [--port 3001]
 *   azscale --version | --help
 */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isAzscaleError } from '../core/errors.js';
import { calculateWorkers, getConfigForScale } from '../scaling/index.js';
import { advise, parseMemoryQuantity } from './advise.js';
import { DASHBOARD_TOKEN_ENV, DashboardUsageError, serveDashboard } from './dashboard.js';
import { buildManifests } from './manifests.js';
import { buildOpsManifests, grafanaDashboard } from './ops.js';
import { createProgress } from './progress.js';
import { sparkline } from './sparkline.js';
import { toYamlDocuments } from './yaml.js';

/** Where the CLI writes; injectable for tests. */
export interface CliIO {
  /** Writes to standard output (results). */
  out(text: string): void;
  /** Writes to standard error (errors, usage, progress). */
  err(text: string): void;
  /** True when standard error is a terminal: long commands then show progress there. @default false */
  errIsTTY?: boolean;
}

/** The package's version, read from its package.json (two folders up from src/cli and dist/cli). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

const USAGE_LINE = 'usage: azscale <command> [options]   (azscale --help for the commands)';

const USAGE = `usage: azscale <command> [options]

commands:
  workers     worker count by the seed's rule (2x CPUs for I/O-bound LLM work, capped)
                --workload io|cpu   --cpus N   --max-workers N (default: MAX_WORKERS or 32)
  preset      show a resource preset: azscale preset large [--json]
  manifests   Kubernetes YAML from a preset: Service, one Deployment + HPA per region,
              prometheus-adapter rules
                --scale NAME --regions a,b --image IMAGE [--name N] [--namespace NS]
                [--replicas N] [--min-replicas N] [--max-replicas N]
                [--only multi-region|hpa|adapter|servicemonitor|rules|pdb|keda|dashboard]
                [--ops] (add the operations templates: ServiceMonitor, PrometheusRule alerts,
                PodDisruptionBudget, KEDA ScaledObject, Grafana dashboard ConfigMap)
                [--queue agent-tasks] [--queue-prefix azs:worker:] [--redis-address redis:6379]
                [--metrics-prefix azscale_]
  grafana     the Grafana dashboard JSON [--metrics-prefix azscale_]
  advise      scrape a running service's /metrics and print the ScalingAdvisor's verdict
                --metrics URL [--samples 3] [--interval 1] [--cpus N | --scale NAME]
                [--memory-limit 8Gi] [--json]
  dashboard   serve the operations dashboard against a running fleet's Redis
                --redis URL --queue NAME [--queue NAME ...] [--port 3001] [--host 127.0.0.1]
                [--prefix azs:worker:] [--title TEXT]; read-only unless the environment
                has ${DASHBOARD_TOKEN_ENV} (then actions need that bearer token)
  help        this text (also --help, -h; with a command: azscale advise --help)
  version     the package version (also --version, -v)
`;

class UsageError extends Error {}

function int(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new UsageError(`--${option} must be a positive integer, received "${value}"`);
  }
  return n;
}

function num(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${option} must be a positive number, received "${value}"`);
  }
  return n;
}

function pad(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/**
 * Runs the CLI with `argv` (without the node and script paths). Resolves to the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    io.err(`${USAGE_LINE}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  try {
    switch (command) {
      case 'workers': {
        const { values } = parseArgs({
          args: [...rest],
          options: {
            workload: { type: 'string' },
            cpus: { type: 'string' },
            'max-workers': { type: 'string' },
            json: { type: 'boolean' },
          },
        });
        const workload = values.workload ?? 'io';
        if (workload !== 'io' && workload !== 'cpu') {
          throw new UsageError(`--workload must be io or cpu, received "${workload}"`);
        }
        const workers = calculateWorkers({
          workload,
          cpus: int(values.cpus, 'cpus'),
          maxWorkers: int(values['max-workers'], 'max-workers'),
        });
        io.out(values.json ? `${JSON.stringify({ workers, workload })}\n` : `${workers}\n`);
        return 0;
      }
      case 'preset': {
        const { values, positionals } = parseArgs({
          args: [...rest],
          allowPositionals: true,
          options: { json: { type: 'boolean' } },
        });
        if (positionals.length !== 1)
          throw new UsageError('preset takes one name: small, medium, large or xlarge');
        const p = getConfigForScale(positionals[0]!);
        if (values.json) io.out(`${JSON.stringify(p, null, 2)}\n`);
        else
          io.out(pad([['setting', 'value'], ...Object.entries(p).map(([k, v]) => [k, String(v)])]));
        return 0;
      }
      case 'manifests': {
        const { values } = parseArgs({
          args: [...rest],
          options: {
            scale: { type: 'string' },
            regions: { type: 'string' },
            image: { type: 'string' },
            name: { type: 'string' },
            namespace: { type: 'string' },
            replicas: { type: 'string' },
            'min-replicas': { type: 'string' },
            'max-replicas': { type: 'string' },
            only: { type: 'string' },
            ops: { type: 'boolean' },
            queue: { type: 'string' },
            'queue-prefix': { type: 'string' },
            'redis-address': { type: 'string' },
            'metrics-prefix': { type: 'string' },
          },
        });
        if (!values.scale || !values.regions || !values.image) {
          throw new UsageError('manifests needs --scale, --regions and --image');
        }
        const m = buildManifests({
          scale: values.scale,
          regions: values.regions
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean),
          image: values.image,
          name: values.name,
          namespace: values.namespace,
          replicas: int(values.replicas, 'replicas'),
          minReplicas: int(values['min-replicas'], 'min-replicas'),
          maxReplicas: int(values['max-replicas'], 'max-replicas'),
        });
        const ops = buildOpsManifests({
          regions: values.regions
            .split(',')
            .map((r) => r.trim())
            .filter(Boolean),
          name: values.name,
          namespace: values.namespace,
          queue: values.queue,
          queuePrefix: values['queue-prefix'],
          redisAddress: values['redis-address'],
          metricsPrefix: values['metrics-prefix'],
          minReplicas: int(values['min-replicas'], 'min-replicas'),
          maxReplicas: int(values['max-replicas'], 'max-replicas'),
        });
        const base = { 'multi-region': m.multiRegion, hpa: m.hpa, adapter: m.adapter };
        const groups = { ...base, ...ops };
        if (values.only !== undefined && !Object.hasOwn(groups, values.only)) {
          throw new UsageError(`--only must be one of ${Object.keys(groups).join(', ')}`);
        }
        const docs = values.only
          ? groups[values.only as keyof typeof groups]
          : Object.values(values.ops ? groups : base).flat();
        io.out(
          toYamlDocuments(
            docs,
            `Generated by: azscale manifests --scale ${values.scale} --regions ${values.regions} --image ${values.image}`,
          ),
        );
        return 0;
      }
      case 'grafana': {
        const { values } = parseArgs({
          args: [...rest],
          options: { 'metrics-prefix': { type: 'string' } },
        });
        const prefix = values['metrics-prefix'] ?? 'azscale_';
        if (prefix !== '' && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
          throw new UsageError(
            `--metrics-prefix must be a metric name prefix, received "${prefix}"`,
          );
        }
        io.out(`${JSON.stringify(grafanaDashboard(prefix), null, 2)}\n`);
        return 0;
      }
      case 'dashboard': {
        let served: Awaited<ReturnType<typeof serveDashboard>>;
        try {
          served = await serveDashboard(rest);
        } catch (e) {
          if (e instanceof DashboardUsageError) throw new UsageError(e.message);
          throw e;
        }
        io.out(`azscale dashboard: ${served.url}\n`);
        // Serves until SIGINT/SIGTERM, then closes its Redis connections and exits 0.
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            resolve();
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
        await served.close();
        return 0;
      }
      case 'advise': {
        const { values } = parseArgs({
          args: [...rest],
          options: {
            metrics: { type: 'string' },
            samples: { type: 'string' },
            interval: { type: 'string' },
            cpus: { type: 'string' },
            scale: { type: 'string' },
            'memory-limit': { type: 'string' },
            json: { type: 'boolean' },
          },
        });
        if (!values.metrics)
          throw new UsageError('advise needs --metrics http://host:port/metrics');
        let url: URL;
        try {
          url = new URL(values.metrics);
        } catch {
          throw new UsageError(`--metrics must be a URL, received "${values.metrics}"`);
        }
        const preset = values.scale ? getConfigForScale(values.scale) : undefined;
        const memoryLimit = values['memory-limit'] ?? preset?.memory_limit;
        const samples = int(values.samples, 'samples') ?? 3;
        const interval = num(values.interval, 'interval');
        const cpus = num(values.cpus, 'cpus') ?? (preset ? Number(preset.cpu_limit) : undefined);
        const memoryLimitBytes = memoryLimit ? parseMemoryQuantity(memoryLimit) : undefined;
        // samples x interval seconds can be long: say what is happening when a person watches.
        const progress = createProgress(io.errIsTTY === true, io.err);
        progress.update(`advise: scraping ${url.href} (1 of ${samples})`);
        let result: Awaited<ReturnType<typeof advise>>;
        try {
          result = await advise({
            url: url.href,
            samples,
            interval,
            cpus,
            memoryLimitBytes,
            onProgress: (done, total, next) => {
              if (done < total) {
                progress.update(`advise: ${done} of ${total} scrapes done, next in ${next} s`);
              }
            },
          });
        } finally {
          progress.done();
        }
        const { snapshot, assessment } = result;
        if (values.json) {
          io.out(`${JSON.stringify({ snapshot, assessment }, null, 2)}\n`);
          return 0;
        }
        const fmt = (v: number | undefined, unit: 'ms' | '%') =>
          v === undefined
            ? 'n/a'
            : unit === 'ms'
              ? `${v.toFixed(1)} ms`
              : `${(v * 100).toFixed(1)} %`;
        const q = snapshot.queueDepthHistory;
        io.out(
          pad([
            ['indicator', 'value'],
            ['p95 latency', fmt(snapshot.p95LatencyMs, 'ms')],
            ['error rate', fmt(snapshot.errorRate, '%')],
            ['cpu', fmt(snapshot.cpu, '%')],
            ['memory', fmt(snapshot.memory, '%')],
            ['queue depth', q && q.length > 0 ? `${sparkline(q)}  ${q.join(' -> ')}` : 'n/a'],
          ]),
        );
        io.out(
          `\nverdict: scale ${assessment.scale}${assessment.scale === 'up' ? ` (${assessment.direction})` : ''}` +
            `${assessment.bottleneck ? `, bottleneck: ${assessment.bottleneck}` : ''}\n`,
        );
        for (const r of assessment.reasons) io.out(`  - ${r}\n`);
        return 0;
      }
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return 0;
      case 'version':
      case '--version':
      case '-v':
        io.out(`${cliVersion()}\n`);
        return 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`azscale: ${(e as Error).message}\n${USAGE_LINE}\n`);
      return 2;
    }
    if (isAzscaleError(e)) {
      io.err(`azscale: ${e.message}\n`);
      return 2;
    }
    io.err(`azscale: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  runCli(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    errIsTTY: process.stderr.isTTY === true,
  }).then((code) => {
    process.exitCode = code;
  });
}
