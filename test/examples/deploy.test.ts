/**
 * The deployment templates in examples/deploy agree with the code: every YAML parses, ports,
 * probe paths, metric names and the HPA behaviour match what the service and the seed use, the
 * checked-in manifests are what `azscale manifests` prints, and every nginx config passes
 * `nginx -t` and routes as it says.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { QUEUE_NAME, ROUTES, createAgentService } from '../../examples/agent-service/app.js';
import { loadConfig } from '../../examples/agent-service/config.js';
import { HPA_BEHAVIOR, SERVICE_CONTRACT } from '../../src/cli/manifests.js';
import { runCli } from '../../src/cli/main.js';
import { ResourceConfig } from '../../src/scaling/index.js';
import { freePort } from '../harness/env.js';
import { NGINX_BIN, ROOT, localNginxConfig, nginxTest, startNginx } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked freely in assertions
type Obj = Record<string, any>;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const DEPLOY = join(ROOT, 'examples/deploy');
const yamlFiles = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f));

function docsOf(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'));
  for (const d of docs) expect(d.errors, `${file}: ${d.errors.join('; ')}`).toEqual([]);
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

async function cli(args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  expect(code, err).toBe(0);
  return out;
}

describe('examples/deploy YAML', () => {
  it('parses every YAML file into Kubernetes objects', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(3);
    for (const f of yamlFiles) {
      const docs = docsOf(relative(DEPLOY, f));
      expect(docs.length).toBeGreaterThan(0);
      for (const d of docs) {
        expect(typeof d.apiVersion, f).toBe('string');
        expect(typeof d.kind, f).toBe('string');
        expect(typeof d.metadata?.name, f).toBe('string');
      }
    }
  });

  it('is exactly what `azscale manifests --scale large --regions us-east,eu-west` prints', async () => {
    const args = [
      'manifests',
      '--scale',
      'large',
      '--regions',
      'us-east,eu-west',
      '--image',
      'agent-service:1.0',
    ];
    for (const [only, file] of [
      ['multi-region', 'k8s/multi-region.yaml'],
      ['hpa', 'k8s/hpa.yaml'],
      ['adapter', 'k8s/prometheus-adapter.yaml'],
    ] as const) {
      const printed = parseAllDocuments(await cli([...args, '--only', only])).map((d) => d.toJS());
      expect(
        printed,
        `${file} is stale: regenerate it with azscale ${args.join(' ')} --only ${only}`,
      ).toEqual(docsOf(file));
    }
  });

  it('Deployments and the Service use the port, probe paths and metrics path of the service', () => {
    const config = loadConfig({});
    expect(SERVICE_CONTRACT.port).toBe(config.port);
    expect(SERVICE_CONTRACT.livenessPath).toBe(ROUTES.healthz);
    expect(SERVICE_CONTRACT.readinessPath).toBe(ROUTES.readyz);
    expect(SERVICE_CONTRACT.metricsPath).toBe(ROUTES.metrics);

    const docs = docsOf('k8s/multi-region.yaml');
    const deployments = docs.filter((d) => d.kind === 'Deployment');
    const service = docs.find((d) => d.kind === 'Service')!;
    expect(deployments.map((d) => d.spec.template.metadata.labels.region)).toEqual([
      'us-east',
      'eu-west',
    ]);
    for (const d of deployments) {
      expect(d.metadata.namespace).toBe('production');
      expect(d.spec.replicas).toBe(10);
      const pod = d.spec.template;
      const [c] = pod.spec.containers as Obj[];
      const port = (c!.ports as Obj[]).find((p) => p.name === 'http')!;
      expect(port.containerPort).toBe(config.port);
      const env = Object.fromEntries(
        (c!.env as Obj[]).map((e) => [e.name, e.value ?? e.valueFrom]),
      );
      expect(Number(env.PORT)).toBe(port.containerPort);
      expect(env.HOST).toBe('0.0.0.0');
      expect(env.REGION).toBe(pod.metadata.labels.region);
      // Every variable the manifests set is one the service reads.
      expect(() =>
        loadConfig(
          Object.fromEntries(
            Object.entries(env).filter(([, v]) => typeof v === 'string'),
          ) as Record<string, string>,
        ),
      ).not.toThrow();
      expect(c!.livenessProbe.httpGet).toEqual({ path: ROUTES.healthz, port: 'http' });
      expect(c!.readinessProbe.httpGet).toEqual({ path: ROUTES.readyz, port: 'http' });
      expect(pod.metadata.annotations['prometheus.io/path']).toBe(ROUTES.metrics);
      expect(Number(pod.metadata.annotations['prometheus.io/port'])).toBe(config.port);
      expect(c!.resources.limits).toEqual({
        cpu: ResourceConfig.LARGE.cpu_limit,
        memory: ResourceConfig.LARGE.memory_limit,
      });
      expect(Number(env.WORKERS)).toBe(ResourceConfig.LARGE.workers);
      // The drain (SHUTDOWN_TIMEOUT, default 30 s) fits in the grace period.
      expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(config.shutdownTimeout);
      expect(service.spec.selector).toEqual({ app: pod.metadata.labels.app });
    }
    expect(service.spec.ports[0].targetPort).toBe('http');
    expect(service.spec.type).toBe('LoadBalancer');
  });

  it('the HPA scales each regional Deployment on cpu, memory, requests/s and queue_depth with the seed behaviour', () => {
    const deployments = docsOf('k8s/multi-region.yaml').filter((d) => d.kind === 'Deployment');
    const hpas = docsOf('k8s/hpa.yaml');
    expect(hpas.map((h) => h.spec.scaleTargetRef.name)).toEqual(
      deployments.map((d) => d.metadata.name),
    );
    for (const h of hpas) {
      expect(h.apiVersion).toBe('autoscaling/v2');
      expect(h.kind).toBe('HorizontalPodAutoscaler');
      expect([h.spec.minReplicas, h.spec.maxReplicas]).toEqual([4, 50]);
      const m = h.spec.metrics as Obj[];
      expect(m.find((x) => x.resource?.name === 'cpu')?.resource.target).toEqual({
        type: 'Utilization',
        averageUtilization: 70,
      });
      expect(m.find((x) => x.resource?.name === 'memory')?.resource.target).toEqual({
        type: 'Utilization',
        averageUtilization: 80,
      });
      const rps = m.find((x) => x.type === 'Pods')!;
      expect(rps.pods.metric.name).toBe('http_requests_per_second');
      expect(rps.pods.target).toEqual({ type: 'AverageValue', averageValue: '100' });
      const q = m.find((x) => x.type === 'External')!;
      expect(q.external.metric.name).toBe('queue_depth');
      expect(q.external.metric.selector.matchLabels.queue).toBe(QUEUE_NAME);
      expect(q.external.target).toEqual({ type: 'AverageValue', averageValue: '30' });
      expect(h.spec.behavior).toEqual(HPA_BEHAVIOR);
      expect(h.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
      expect(h.spec.behavior.scaleUp.policies).toEqual([
        { type: 'Percent', value: 100, periodSeconds: 60 },
        { type: 'Pods', value: 5, periodSeconds: 60 },
      ]);
    }
  });

  it('the prometheus-adapter rules read series the running service exports', async () => {
    const [cm] = docsOf('k8s/prometheus-adapter.yaml');
    const rules = parse(cm!.data['config.yaml']) as Obj;
    const custom = (rules.rules as Obj[])[0]!;
    const external = (rules.externalRules as Obj[])[0]!;
    expect(custom.name.as).toBe('http_requests_per_second');
    expect(external.name.as).toBe('queue_depth');
    const seriesName = (q: string) => /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{/.exec(q)![1]!;

    const service = await createAgentService(
      loadConfig({ LOG_LEVEL: 'silent', PORT: '0', LLM_LATENCY_MS: '1' }),
    );
    try {
      const url = await service.listen();
      await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"message":"hi"}',
      });
      const text = await (await fetch(url + ROUTES.metrics)).text();
      expect(text).toMatch(new RegExp(`^${seriesName(custom.seriesQuery)}\\{`, 'm'));
      expect(text).toMatch(
        new RegExp(`^${seriesName(external.seriesQuery)}\\{[^}]*queue="${QUEUE_NAME}"`, 'm'),
      );
      expect(seriesName(custom.seriesQuery)).toBe(SERVICE_CONTRACT.requestsCounter);
      expect(seriesName(external.seriesQuery)).toBe(SERVICE_CONTRACT.queueDepthGauge);
    } finally {
      await service.close();
    }
  });
});

describe('examples/deploy Dockerfile', () => {
  it('exposes the port the manifests use and starts the service entry point', () => {
    const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
    expect(text).toMatch(new RegExp(`^EXPOSE ${SERVICE_CONTRACT.port}$`, 'm'));
    expect(text).toMatch(new RegExp(`PORT=${SERVICE_CONTRACT.port}\\b`));
    expect(text).toMatch(/HOST=0\.0\.0\.0/);
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]!) as string[];
    expect(cmd.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
    expect(statSync(join(ROOT, cmd[3]!)).isFile()).toBe(true);
    for (const m of text.matchAll(/^COPY (\S+)/gm)) {
      if (m[1] !== 'package.json')
        expect(
          statSync(join(ROOT, m[1]!)).isDirectory() || statSync(join(ROOT, m[1]!)).isFile(),
        ).toBe(true);
    }
  });
});

describe.skipIf(!NGINX_BIN)('examples/deploy nginx configs', () => {
  const backends: Server[] = [];
  const addrs: string[] = [];

  beforeAll(async () => {
    for (const name of ['one', 'two', 'three']) {
      const s = createServer((_req, res) => res.end(name));
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      backends.push(s);
      addrs.push(`127.0.0.1:${(s.address() as AddressInfo).port}`);
    }
  });
  afterAll(async () => {
    for (const s of backends) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  it.each(['least-conn.conf', 'ip-hash.conf', 'cookie-sticky.conf'])(
    '%s passes nginx -t',
    async (file) => {
      const out = await nginxTest(localNginxConfig(file, addrs, await freePort()));
      expect(out).toMatch(/syntax is ok/);
      expect(out).toMatch(/test is successful/);
    },
  );

  it('least-conn.conf is the seed upstream: least_conn with max_fails=3 fail_timeout=30s, spreading requests', async () => {
    const text = readFileSync(join(DEPLOY, 'nginx/least-conn.conf'), 'utf8');
    expect(text).toMatch(/^\s*least_conn;/m);
    expect(text.match(/server agent-\d:3000 weight=1 max_fails=3 fail_timeout=30s;/g)).toHaveLength(
      4,
    );
    expect(text).toMatch(/proxy_http_version 1\.1;/);
    const port = await freePort();
    const nginx = await startNginx(localNginxConfig('least-conn.conf', addrs, port), port);
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 9; i++) seen.add(await (await fetch(`${nginx.url}/x`)).text());
      expect(seen.size).toBe(3);
    } finally {
      await nginx.stop();
    }
  });

  it('ip-hash.conf keeps one client on one instance', async () => {
    const port = await freePort();
    const nginx = await startNginx(localNginxConfig('ip-hash.conf', addrs, port), port);
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 9; i++) seen.add(await (await fetch(`${nginx.url}/x`)).text());
      expect(seen.size).toBe(1);
    } finally {
      await nginx.stop();
    }
  });

  it('cookie-sticky.conf hands out srv_id and keeps each cookie on one instance', async () => {
    const port = await freePort();
    const nginx = await startNginx(localNginxConfig('cookie-sticky.conf', addrs, port), port);
    try {
      const firstServed = new Set<string>();
      for (let client = 0; client < 8; client++) {
        const first = await fetch(`${nginx.url}/x`);
        const cookie = first.headers.get('set-cookie') ?? '';
        expect(cookie).toMatch(/^srv_id=[0-9a-f]{32}; Max-Age=3600; Path=\//);
        const served = await first.text();
        firstServed.add(served);
        const id = cookie.split(';')[0]!;
        for (let i = 0; i < 4; i++) {
          const r = await fetch(`${nginx.url}/x`, { headers: { cookie: id } });
          expect(r.headers.get('set-cookie')).toBeNull();
          expect(await r.text()).toBe(served);
        }
      }
      // Clients without a cookie are spread, not all pinned to one instance.
      expect(firstServed.size).toBeGreaterThan(1);
    } finally {
      await nginx.stop();
    }
  });
});
