/**
 * The `azscale` CLI: workers, preset, manifests, advise (against a running service), its YAML
 * emitter and its Prometheus text reader.
 */
import { readFileSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { createAgentService } from '../../examples/agent-service/app.js';
import { loadConfig } from '../../examples/agent-service/config.js';
import { snapshotFromScrapes } from '../../src/cli/advise.js';
import { runCli } from '../../src/cli/main.js';
import { sparkline } from '../../src/cli/sparkline.js';
import {
  histogramBuckets,
  histogramQuantile,
  parsePrometheusText,
} from '../../src/cli/prometheus-text.js';
import { type YamlValue, toYaml } from '../../src/cli/yaml.js';
import { ResourceConfig, ScalingAdvisor } from '../../src/scaling/index.js';
import { spawnTsx } from './helpers.js';

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

/** Like cli(), but as if stderr were a terminal. */
async function cliTTY(...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (t) => (out += t),
    err: (t) => (err += t),
    errIsTTY: true,
  });
  return { code, out, err };
}

const PKG_VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** A /metrics endpoint whose queue depth is the next of `depths` on each scrape. */
async function depthServer(depths: number[]): Promise<{ url: string; server: Server }> {
  let i = 0;
  const server = createServer((_req, res) => {
    const d = depths[Math.min(i++, depths.length - 1)];
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(
      `# TYPE azscale_worker_queue_depth gauge\nazscale_worker_queue_depth{queue="q"} ${d}\n`,
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`, server };
}

describe('azscale --version / --help / usage', () => {
  it('prints the package version and exits 0', async () => {
    for (const flag of ['--version', '-v', 'version']) {
      const r = await cli(flag);
      expect(r).toEqual({ code: 0, out: `${PKG_VERSION}\n`, err: '' });
    }
  });

  it('prints the help on stdout and exits 0, also for one command', async () => {
    for (const args of [['--help'], ['-h'], ['help'], ['advise', '--help'], ['manifests', '-h']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.out).toMatch(/^usage: azscale <command>/);
      expect(r.out).toMatch(/--version/);
      expect(r.err).toBe('');
    }
  });

  it('prints a usage line on stderr and exits 2 without arguments or on bad input', async () => {
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.out).toBe('');
    expect(none.err).toMatch(/^usage: azscale <command> \[options\]/);
    for (const args of [['nope'], ['workers', '--cpus', '0'], ['preset'], ['workers', '--bogus']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err, args.join(' ')).toMatch(/^azscale: .+\nusage: azscale <command>/);
    }
  });

  it('exits with those codes as a program', async () => {
    const version = spawnTsx('src/cli/main.ts', ['--version'], process.env);
    expect(await version.exited).toBe(0);
    expect(version.output()).toBe(`${PKG_VERSION}\n`);
    const none = spawnTsx('src/cli/main.ts', [], process.env);
    expect(await none.exited).toBe(2);
    expect(none.output()).toMatch(/^usage: azscale/);
  });
});

describe('azscale workers / preset', () => {
  it('sizes workers by the seed rule', async () => {
    expect((await cli('workers', '--cpus', '4')).out).toBe('8\n');
    expect((await cli('workers', '--cpus', '40')).out).toBe('32\n');
    expect((await cli('workers', '--cpus', '4', '--workload', 'cpu')).out).toBe('4\n');
    expect((await cli('workers', '--cpus', '4', '--max-workers', '3')).out).toBe('3\n');
    expect(JSON.parse((await cli('workers', '--cpus', '2', '--json')).out)).toEqual({
      workers: 4,
      workload: 'io',
    });
    const bad = await cli('workers', '--cpus', 'many');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--cpus must be a positive integer/);
    expect((await cli('workers', '--workload', 'gpu')).code).toBe(2);
  });

  it('prints presets and refuses unknown ones', async () => {
    const r = await cli('preset', 'LARGE', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ ...ResourceConfig.LARGE });
    const table = await cli('preset', 'small');
    expect(table.out).toMatch(/^llm_concurrent_requests\s+5$/m);
    const bad = await cli('preset', 'huge');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/scale must be one of/);
    expect((await cli('nope')).code).toBe(2);
    expect((await cli('help')).out).toMatch(/usage: azscale/);
  });

  it('runs as a program (the package bin)', async () => {
    const child = spawnTsx('src/cli/main.ts', ['preset', 'xlarge', '--json'], process.env);
    expect(await child.exited).toBe(0);
    expect(JSON.parse(child.output())).toEqual({ ...ResourceConfig.XLARGE });
  });
});

describe('azscale manifests', () => {
  it('emits a Deployment and an HPA per region, sized from the preset', async () => {
    const r = await cli(
      'manifests',
      '--scale',
      'small',
      '--regions',
      'ap-south,us-west,eu-central',
      '--image',
      'reg.example.com/app:2.1',
      '--namespace',
      'staging',
      '--min-replicas',
      '2',
      '--max-replicas',
      '6',
    );
    expect(r.code, r.err).toBe(0);
    const docs = parseAllDocuments(r.out).map((d) => d.toJS());
    const kinds = docs.map((d) => d.kind);
    expect(kinds.filter((k) => k === 'Deployment')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'HorizontalPodAutoscaler')).toHaveLength(3);
    expect(kinds).toContain('Service');
    expect(kinds).toContain('ConfigMap');
    for (const d of docs.filter((x) => x.kind === 'Deployment')) {
      const c = d.spec.template.spec.containers[0];
      expect(c.image).toBe('reg.example.com/app:2.1');
      expect(c.resources.limits).toEqual({ cpu: '1', memory: '2Gi' });
      expect(c.resources.requests).toEqual({ cpu: '500m', memory: '1Gi' });
      expect(d.metadata.namespace).toBe('staging');
    }
    for (const h of docs.filter((x) => x.kind === 'HorizontalPodAutoscaler')) {
      expect([h.spec.minReplicas, h.spec.maxReplicas]).toEqual([2, 6]);
    }
  });

  it('refuses bad input with exit code 2', async () => {
    expect((await cli('manifests', '--scale', 'large')).code).toBe(2);
    const region = await cli(
      'manifests',
      '--scale',
      'large',
      '--regions',
      'US East',
      '--image',
      'a',
    );
    expect(region.code).toBe(2);
    expect(region.err).toMatch(/regions\[0\] must be a DNS label/);
    expect((await cli('manifests', '--scale', 'tiny', '--regions', 'a', '--image', 'a')).code).toBe(
      2,
    );
    expect(
      (await cli('manifests', '--scale', 'large', '--regions', 'a,a', '--image', 'a')).code,
    ).toBe(2);
    expect(
      (
        await cli(
          'manifests',
          '--scale',
          'large',
          '--regions',
          'a',
          '--image',
          'a',
          '--min-replicas',
          '9',
          '--max-replicas',
          '3',
        )
      ).code,
    ).toBe(2);
  });
});

describe('azscale advise', () => {
  it("reads a running service's /metrics and prints the advisor's verdict", async () => {
    const service = await createAgentService(
      loadConfig({ LOG_LEVEL: 'silent', PORT: '0', LLM_LATENCY_MS: '30', WORKERS: '1' }),
    );
    const url = await service.listen();
    try {
      const load = (async () => {
        for (let i = 0; i < 20; i++) {
          await fetch(`${url}/api/chat`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ message: `advise ${i}` }),
          });
        }
      })();
      const r = await cli(
        'advise',
        '--metrics',
        `${url}/metrics`,
        '--samples',
        '3',
        '--interval',
        '0.3',
        '--scale',
        'small',
        '--json',
      );
      await load;
      expect(r.code, r.err).toBe(0);
      const { snapshot, assessment } = JSON.parse(r.out);
      expect(snapshot.p95LatencyMs).toBeGreaterThan(25); // the stand-in's 30 ms dominate
      expect(snapshot.p95LatencyMs).toBeLessThan(2000);
      expect(snapshot.errorRate).toBe(0);
      expect(snapshot.cpu).toBeGreaterThanOrEqual(0);
      expect(snapshot.memory).toBeGreaterThan(0);
      expect(snapshot.queueDepthHistory).toHaveLength(3);
      expect(assessment.scale).toBe('hold');
      const text = await cli('advise', '--metrics', `${url}/metrics`, '--samples', '1');
      expect(text.out).toMatch(/^p95 latency\s+\d+\.\d ms$/m);
      expect(text.out).toMatch(/^verdict: scale (hold|up|down)/m);
    } finally {
      await service.close();
    }
  });

  it('fails cleanly on an unreachable or invalid URL', async () => {
    expect((await cli('advise')).code).toBe(2);
    expect((await cli('advise', '--metrics', 'not a url')).code).toBe(2);
    const down = await cli('advise', '--metrics', 'http://127.0.0.1:9/metrics', '--samples', '1');
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/^azscale: /);
  });

  it('draws the queue depth as a sparkline and shows progress only on a terminal', async () => {
    const { url, server } = await depthServer([1, 5, 9]);
    try {
      const tty = await cliTTY('advise', '--metrics', url, '--samples', '3', '--interval', '0.2');
      expect(tty.code, tty.err).toBe(0);
      expect(tty.out).toMatch(/^queue depth\s+▁▅█ {2}1 -> 5 -> 9$/m);
      expect(tty.err).toContain(`\radvise: scraping ${url} (1 of 3)`);
      expect(tty.err).toContain('\radvise: 1 of 3 scrapes done, next in 0.2 s');
      expect(tty.err).toContain('\radvise: 2 of 3 scrapes done, next in 0.2 s');
      expect(tty.err.endsWith('\r\x1b[K')).toBe(true); // the line is cleared at the end
    } finally {
      server.close();
    }
    const again = await depthServer([3]);
    try {
      const piped = await cli(
        'advise',
        '--metrics',
        again.url,
        '--samples',
        '2',
        '--interval',
        '0.1',
      );
      expect(piped.code, piped.err).toBe(0);
      expect(piped.err).toBe(''); // not a terminal: no progress
      expect(piped.out).toMatch(/^queue depth\s+▁▁ {2}3 -> 3$/m);
      // A failed scrape clears the progress line before the error.
      const down = await cliTTY(
        'advise',
        '--metrics',
        'http://127.0.0.1:9/metrics',
        '--samples',
        '1',
      );
      expect(down.code).toBe(1);
      expect(down.err).toContain('\x1b[K\r\x1b[Kazscale: cannot read');
    } finally {
      again.server.close();
    }
  });

  it('sparkline scales between the minimum and the maximum', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([4, 4, 4])).toBe('▁▁▁');
    expect(sparkline([])).toBe('');
    expect(sparkline([1, Number.NaN, 3])).toBe('▁ █');
    expect(sparkline([Number.NaN])).toBe(' ');
  });

  it('computes p95 and error rate from the difference of two scrapes', () => {
    const scrape = (t: number, fast: number, slow: number, errors: number, depth: number) => ({
      t,
      samples: parsePrometheusText(
        [
          '# HELP azscale_http_request_duration_seconds x',
          '# TYPE azscale_http_request_duration_seconds histogram',
          `azscale_http_request_duration_seconds_bucket{route="/a",le="0.5"} ${fast}`,
          `azscale_http_request_duration_seconds_bucket{route="/a",le="5"} ${fast + slow}`,
          `azscale_http_request_duration_seconds_bucket{route="/a",le="+Inf"} ${fast + slow}`,
          `azscale_http_requests_total{route="/a",status="200"} ${fast + slow - errors}`,
          `azscale_http_requests_total{route="/a",status="500"} ${errors}`,
          `azscale_http_errors_total{route="/a"} ${errors}`,
          `azscale_worker_queue_depth{queue="agent-tasks"} ${depth}`,
          `process_cpu_seconds_total ${t / 2000}`,
          'process_resident_memory_bytes 1073741824',
        ].join('\n'),
      ),
    });
    // Before: 1000 fast requests. Then 100 more, 50 of them slow (0.5..5 s) and 10 failed.
    const snap = snapshotFromScrapes([scrape(0, 1000, 0, 0, 1), scrape(10_000, 1050, 50, 10, 9)], {
      cpus: 1,
      memoryLimitBytes: 2 * 1024 ** 3,
    });
    // rank 95 of 100: 45 into the 50 slow ones -> 0.5 + 4.5 * 45/50 = 4.55 s
    expect(snap.p95LatencyMs).toBeCloseTo(4550, 6);
    expect(snap.errorRate).toBeCloseTo(0.1, 10);
    expect(snap.cpu).toBeCloseTo(0.5, 10);
    expect(snap.memory).toBeCloseTo(0.5, 10);
    expect(snap.queueDepthHistory).toEqual([1, 9]);
    // What `advise` then concludes: P95 4.5 s and 10 % errors are both over the seed's limits.
    const verdict = new ScalingAdvisor({ cpuSustainSeconds: 0 }).assess(snap);
    expect(verdict.scale).toBe('up');
    expect(verdict.signals.filter((x) => x.firing).map((x) => x.indicator)).toEqual(
      expect.arrayContaining(['p95-latency', 'error-rate']),
    );
  });
});

describe('Prometheus text reader', () => {
  it('parses labels with escapes and special values', () => {
    const s = parsePrometheusText(
      'a_total{x="q\\"uote",y="new\\nline"} 3 1700000000\nb Nan\nc_bucket{le="+Inf"} +Inf\n',
    );
    expect(s).toEqual([
      { name: 'a_total', labels: { x: 'q"uote', y: 'new\nline' }, value: 3 },
      { name: 'b', labels: {}, value: Number.NaN },
      { name: 'c_bucket', labels: { le: '+Inf' }, value: Number.POSITIVE_INFINITY },
    ]);
    expect(() => parsePrometheusText('bad-name 1')).toThrow(/line 1/);
    expect(() => parsePrometheusText('x one')).toThrow(/not a sample value/);
    expect(() => parsePrometheusText('x{a="1"')).toThrow(SyntaxError);
    expect(histogramQuantile(0.5, histogramBuckets([], 'none'))).toBeUndefined();
  });
});

describe('YAML emitter', () => {
  it('round-trips tricky values through the yaml parser', () => {
    const values: YamlValue[] = [
      {
        plain: 'agent-service',
        reserved: ['yes', 'no', 'true', 'null', '~', 'on', 'Off'],
        numeric: ['100', '1e3', '0x1F', '.5', '-3', '25%', '007'],
        punct: [
          'a: b',
          'x #y',
          '#comment',
          '- dash',
          '*star',
          '&amp',
          '!bang',
          '{b}',
          '[a]',
          "it's",
          '"q"',
          '@at',
          '`tick`',
          '|pipe',
          '>gt',
          '%pct',
        ],
        spaces: [' lead', 'trail ', '', ' '],
        unicode: ['café', '日本', 'emoji 🚀'],
        multi: 'line one\n  indented two\nthree\n',
        multiNoNl: 'a\nb',
        numbers: [0, -1.5, 1e21, 70],
        bools: [true, false],
        nothing: null,
        empty: { obj: {}, arr: [] },
        nested: [[1, [2, { deep: 'x' }]], { a: [{ b: 1, c: [] }] }],
        'key: colon': 1,
        '123': 'numeric key',
      },
      ['top', 'level', { list: true }],
      'scalar only',
    ];
    for (const v of values) expect(parse(toYaml(v))).toEqual(v);
  });
});
