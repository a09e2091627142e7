/**
 * The operations templates in examples/deploy (Grafana dashboard, PrometheusRule alerts,
 * ServiceMonitor, PodDisruptionBudget, KEDA ScaledObject) match what the code exports: every
 * metric name and label in every query, rule and panel is checked against a live /metrics scrape
 * of the example service running on Redis and PostgreSQL (the code's registry, not a list kept
 * here), and the KEDA triggers name streams and a consumer group a real queue creates.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { QUEUE_NAME, createAgentService } from '../../examples/agent-service/app.js';
import { loadConfig } from '../../examples/agent-service/config.js';
import { runCli } from '../../src/cli/main.js';
import { QUEUE_CONSUMER_GROUP } from '../../src/cli/ops.js';
import { parsePrometheusText } from '../../src/cli/prometheus-text.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { servers } from '../harness/env.js';
import { ROOT } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML is walked freely in assertions
type Obj = Record<string, any>;

const DEPLOY = join(ROOT, 'examples/deploy');
const GEN = [
  'manifests',
  '--scale',
  'large',
  '--regions',
  'us-east,eu-west',
  '--image',
  'agent-service:1.0',
];

function yamlDocs(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8'));
  for (const d of docs) expect(d.errors, file).toEqual([]);
  return docs.map((d) => d.toJS() as Obj).filter((d) => d !== null);
}

async function cli(args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const code = await runCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  expect(code, err).toBe(0);
  return out;
}

/** Metric families of a scrape: name -> label names, histograms also under _bucket/_sum/_count. */
type Families = Map<string, Set<string>>;

function familiesOf(text: string): Families {
  const fams: Families = new Map();
  const histograms = new Set(
    [...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1] as string),
  );
  const add = (name: string, labels: Iterable<string>) => {
    const set = fams.get(name) ?? new Set<string>();
    for (const l of labels) set.add(l);
    fams.set(name, set);
  };
  for (const s of parsePrometheusText(text)) add(s.name, Object.keys(s.labels));
  for (const h of histograms) {
    const base = [...(fams.get(`${h}_bucket`) ?? [])].filter((l) => l !== 'le');
    add(h, base);
    add(`${h}_sum`, base);
    add(`${h}_count`, base);
  }
  return fams;
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'irate',
  'increase',
  'delta',
  'deriv',
  'histogram_quantile',
  'topk',
  'bottomk',
  'abs',
  'clamp_min',
  'clamp_max',
  'le',
]);

/**
 * The problems of one PromQL expression against the scraped families: metric names that are
 * not exported, and grouping/selector labels a metric of the expression does not carry.
 * `extraLabels` are labels Prometheus adds at scrape time (namespace, pod, ...).
 */
function checkQuery(expr: string, fams: Families, extraLabels: readonly string[] = []): string[] {
  const problems: string[] = [];
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const metrics = [...noStrings.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w) && !/^\d/.test(w))
    .filter((w, i, all) => all.indexOf(w) === i)
    // Names inside `by (...)`/`{...}` are labels, handled below.
    .filter((w) => !labelsOf(noStrings).includes(w));
  for (const m of metrics) if (!fams.has(m)) problems.push(`metric ${m} is not exported`);
  for (const l of labelsOf(noStrings)) {
    if (extraLabels.includes(l)) continue;
    for (const m of metrics) {
      const labels = fams.get(m);
      if (!labels) continue;
      if (l === 'le' ? !m.endsWith('_bucket') : !labels.has(l)) {
        problems.push(`label ${l} is not a label of ${m} (it has: ${[...labels].join(', ')})`);
      }
    }
  }
  return problems;
}

/** Label names in `by (...)`, `without (...)`, `on (...)` and `{label="..."}` selectors. */
function labelsOf(expr: string): string[] {
  const out: string[] = [];
  for (const m of expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
    for (const l of (m[1] ?? '').split(',')) if (l.trim()) out.push(l.trim());
  }
  for (const m of expr.matchAll(/\{([^}]*)\}/g)) {
    for (const part of (m[1] ?? '').split(',')) {
      const name = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/.exec(part)?.[1];
      if (name) out.push(name);
    }
  }
  return [...new Set(out)];
}

/** `{{ $labels.x }}` (alert annotations) and `{{x}}` (Grafana legends). */
function templateLabels(text: string): string[] {
  return [...text.matchAll(/\{\{\s*(?:\$labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map(
    (m) => m[1] as string,
  );
}

const s = servers();
let scrape = '';
let fams: Families;

beforeAll(async () => {
  // Every module wired in, on real servers, so every family the code exports is registered.
  const service = await createAgentService(
    loadConfig({
      LOG_LEVEL: 'silent',
      PORT: '0',
      LLM_LATENCY_MS: '5',
      // Half the LLM calls fail, so the error counter (created on the first 5xx) is exported too.
      LLM_FAILURE_RATE: '0.5',
      WORKERS: '1',
      REDIS_URL: s.redisUrl,
      DATABASE_URL: s.pgPrimaryUrl,
      DATABASE_REPLICA_URLS: s.pgReplicaUrls.join(','),
      INSTANCE_ID: `ops-${randomBytes(3).toString('hex')}`,
    }),
  );
  const url = await service.listen();
  try {
    for (let i = 0; i < 8; i++) {
      await fetch(`${url}/api/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: `ops ${i}` }),
      });
    }
    const res = await fetch(`${url}/metrics`);
    scrape = await res.text();
  } finally {
    await service.close();
  }
  fams = familiesOf(scrape);
}, 120_000);

describe('the query checker', () => {
  it('finds an unknown metric and a label the metric does not carry', () => {
    expect(checkQuery('max by (queue) (azscale_worker_queue_dept)', fams)).toEqual([
      'metric azscale_worker_queue_dept is not exported',
    ]);
    expect(checkQuery('max by (circuit) (azscale_worker_queue_depth)', fams)[0]).toMatch(
      /^label circuit is not a label of azscale_worker_queue_depth/,
    );
    expect(checkQuery('sum(azscale_worker_queue_depth{node="x"})', fams)[0]).toMatch(
      /^label node is not a label of/,
    );
    expect(
      checkQuery('sum by (le) (rate(azscale_http_request_duration_seconds_bucket[5m]))', fams),
    ).toEqual([]);
  });
});

describe('PrometheusRule alerts', () => {
  const rules = () =>
    yamlDocs('k8s/prometheus-rules.yaml')
      .filter((d) => d.kind === 'PrometheusRule')
      .flatMap((d) => d.spec.groups.flatMap((g: Obj) => g.rules as Obj[]));

  it('covers breaker open, queue growing, budget above 80 %, replica lag, dead letters rising', () => {
    const exprs = rules().map((r) => r.expr as string);
    expect(exprs.some((e) => e.includes('resilience_circuit_open'))).toBe(true);
    expect(exprs.some((e) => /deriv\(azscale_worker_queue_depth/.test(e))).toBe(true);
    expect(exprs.some((e) => /spend_hour_dollars.*\/.*budget_hour_dollars\)? > 0\.8/.test(e))).toBe(
      true,
    );
    expect(exprs.some((e) => e.includes('db_replica_lag_seconds'))).toBe(true);
    expect(exprs.some((e) => /delta\(azscale_worker_dead_letters/.test(e))).toBe(true);
  });

  it('uses only exported metric names and their labels', () => {
    for (const r of rules()) {
      expect(checkQuery(r.expr, fams), r.alert).toEqual([]);
      const grouped = labelsOf(r.expr);
      for (const l of templateLabels(JSON.stringify(r.annotations))) {
        expect(grouped, `${r.alert}: annotation uses $labels.${l}`).toContain(l);
      }
    }
  });
});

describe('Grafana dashboard', () => {
  const dashboards = (): [string, Obj][] => [
    [
      'grafana/azscale-overview.json',
      JSON.parse(readFileSync(join(DEPLOY, 'grafana/azscale-overview.json'), 'utf8')),
    ],
    ...yamlDocs('k8s/grafana-dashboard.yaml').map((cm): [string, Obj] => [
      'k8s/grafana-dashboard.yaml',
      JSON.parse(Object.values(cm.data as Record<string, string>)[0] as string),
    ]),
  ];

  it('every panel query uses exported metric names and labels; legends use grouped labels', () => {
    for (const [file, d] of dashboards()) {
      expect(d.panels.length, file).toBeGreaterThanOrEqual(8);
      for (const p of d.panels as Obj[]) {
        expect(p.targets.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets as Obj[]) {
          expect(checkQuery(t.expr, fams), `${file}: ${p.title}: ${t.expr}`).toEqual([]);
          for (const l of templateLabels(t.legendFormat ?? '')) {
            expect(labelsOf(t.expr), `${p.title}: legend {{${l}}}`).toContain(l);
          }
        }
      }
    }
  });

  it('is what `azscale grafana` and `azscale manifests --only dashboard` print', async () => {
    const [[, file], [, cm]] = dashboards() as [[string, Obj], [string, Obj]];
    expect(JSON.parse(await cli(['grafana']))).toEqual(file);
    expect(cm).toEqual(file);
  });
});

describe('ServiceMonitor, PodDisruptionBudget, KEDA', () => {
  it('the checked-in files are what `azscale manifests --only <group>` prints', async () => {
    for (const [only, file] of [
      ['servicemonitor', 'k8s/servicemonitor.yaml'],
      ['rules', 'k8s/prometheus-rules.yaml'],
      ['pdb', 'k8s/pdb.yaml'],
      ['keda', 'k8s/keda-scaledobject.yaml'],
      ['dashboard', 'k8s/grafana-dashboard.yaml'],
    ] as const) {
      const printed = parseAllDocuments(await cli([...GEN, '--only', only])).map((d) => d.toJS());
      expect(printed, `${file} is stale: azscale ${GEN.join(' ')} --only ${only}`).toEqual(
        yamlDocs(file),
      );
    }
    // --ops adds them all to the default output.
    const all = parseAllDocuments(await cli([...GEN, '--ops'])).map((d) => d.toJS() as Obj);
    for (const kind of [
      'ServiceMonitor',
      'PrometheusRule',
      'PodDisruptionBudget',
      'ScaledObject',
    ]) {
      expect(
        all.some((d) => d.kind === kind),
        kind,
      ).toBe(true);
    }
  });

  it('the ServiceMonitor selects the metrics Service by label and scrapes its metrics path', () => {
    const [svc, sm] = yamlDocs('k8s/servicemonitor.yaml') as [Obj, Obj];
    expect(svc.kind).toBe('Service');
    expect(sm.kind).toBe('ServiceMonitor');
    expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(sm.spec.endpoints[0].port).toBe(svc.spec.ports[0].name);
    expect(sm.spec.endpoints[0].path).toBe('/metrics');
    const deployments = yamlDocs('k8s/multi-region.yaml').filter((d) => d.kind === 'Deployment');
    for (const d of deployments) {
      expect(d.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      expect(d.spec.template.spec.containers[0].ports[0].name).toBe(svc.spec.ports[0].targetPort);
    }
  });

  it('one PodDisruptionBudget and one ScaledObject per regional Deployment', () => {
    const deployments = yamlDocs('k8s/multi-region.yaml').filter((d) => d.kind === 'Deployment');
    const pdbs = yamlDocs('k8s/pdb.yaml');
    const scaled = yamlDocs('k8s/keda-scaledobject.yaml');
    for (const d of deployments) {
      const pdb = pdbs.find((p) => p.metadata.name === d.metadata.name);
      expect(pdb?.spec.selector.matchLabels).toEqual(d.spec.selector.matchLabels);
      const so = scaled.find((x) => x.spec.scaleTargetRef.name === d.metadata.name);
      expect(so?.spec.triggers.map((t: Obj) => t.type)).toEqual(['redis-streams', 'redis-streams']);
    }
  });

  it("KEDA reads the example queue's real streams and consumer group", async () => {
    // The checked-in file: the example service's queue under the default key prefix.
    const q = new TaskQueue({ name: QUEUE_NAME, redis: s.redisUrl });
    const keys = (q.backend as unknown as { queueKeys: readonly string[] }).queueKeys;
    await q.close();
    for (const so of yamlDocs('k8s/keda-scaledobject.yaml')) {
      expect(so.spec.triggers.map((t: Obj) => t.metadata.stream)).toEqual([keys[0], keys[1]]);
      for (const t of so.spec.triggers as Obj[]) {
        expect(t.metadata.consumerGroup).toBe(QUEUE_CONSUMER_GROUP);
      }
    }

    // And on a live Redis: the streams and group that `azscale manifests` names for a queue are
    // the ones a running worker reads.
    const name = `keda-${randomBytes(4).toString('hex')}`;
    const prefix = 'azs-test-keda:';
    const out = await cli([...GEN, '--only', 'keda', '--queue', name, '--queue-prefix', prefix]);
    const first = parseAllDocuments(out)[0]?.toJS() as Obj | undefined;
    const triggers = (first?.spec.triggers ?? []) as Obj[];
    expect(triggers).toHaveLength(2);
    const queue = new TaskQueue({ name, prefix, redis: s.redisUrl });
    const worker = new BackgroundWorker({ queue, visibilityTimeout: 5, handler: async () => 1 });
    const redis = new Redis(s.redisUrl);
    try {
      const id = await queue.submitTask({});
      await worker.start();
      expect(await queue.waitForResult(id, { timeout: 20 })).toBe(1);
      for (const t of triggers) {
        const groups = (await redis.call('XINFO', 'GROUPS', t.metadata.stream)) as unknown[][];
        const names = groups.map((g) => g[g.indexOf('name') + 1]);
        expect(names, t.metadata.stream).toContain(t.metadata.consumerGroup);
      }
    } finally {
      await worker.stop({ timeout: 5 });
      await queue.close();
      redis.disconnect();
    }
  });
});
