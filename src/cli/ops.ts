/**
 * Operations templates for a service built on azscale: a headless metrics Service and a
 * ServiceMonitor (Prometheus Operator), PrometheusRule alerts, a PodDisruptionBudget per regional
 * Deployment, a KEDA ScaledObject on the task queue's Redis streams, and a Grafana dashboard.
 * Every metric name and label they use is one the code exports (checked by
 * test/examples/ops-templates.test.ts against a live /metrics scrape).
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { hashTag } from '../core/keys.js';
import { assertNumber, assertString } from '../core/validate.js';
import { SERVICE_CONTRACT } from './manifests.js';
import type { YamlValue } from './yaml.js';

/** Options of {@link buildOpsManifests}. */
export interface OpsOptions {
  /** Region names, one PodDisruptionBudget and ScaledObject each, as for `buildManifests`. */
  regions: readonly string[];
  /** App name (the `app` label and Deployment name prefix). @default 'agent-service' */
  name?: string;
  /** Namespace of the app. @default 'production' */
  namespace?: string;
  /** Prefix of the metric names (`Metrics` option `prefix`). @default 'azscale_' */
  metricsPrefix?: string;
  /** The task queue's name (`TaskQueue` option `name`). @default 'agent-tasks' */
  queue?: string;
  /** The task queue's key prefix (`TaskQueue` option `prefix`). @default 'azs:worker:' */
  queuePrefix?: string;
  /** Redis `host:port` KEDA reads the streams from. @default 'redis:6379' */
  redisAddress?: string;
  /** Queue entries per replica KEDA aims for (its `lagCount`). @default 30 (the HPA's target) */
  tasksPerReplica?: number;
  /** Fewest replicas per region under KEDA. @default 4 (the seed's) */
  minReplicas?: number;
  /** Most replicas per region under KEDA. @default 50 (the seed's) */
  maxReplicas?: number;
  /** The `release` label the Prometheus Operator selects rules and monitors by. @default 'prometheus' */
  prometheusRelease?: string;
}

/** The consumer group the Redis queue backend reads its streams with (redis-backend.ts). */
export const QUEUE_CONSUMER_GROUP = 'workers';

/**
 * The Redis keys of a queue's two streams (normal and priority lane), as the Redis backend names
 * them: `<prefix>{<queue>}:s` and `<prefix>{<queue>}:h`.
 */
export function queueStreams(queue: string, prefix = 'azs:worker:'): [string, string] {
  const base = `${prefix}${hashTag(queue)}`;
  return [`${base}:s`, `${base}:h`];
}

/** The groups of {@link buildOpsManifests}. */
export interface OpsManifests {
  /** Headless metrics Service and the ServiceMonitor scraping it. */
  servicemonitor: YamlValue[];
  /** The PrometheusRule with azscale's alerts. */
  rules: YamlValue[];
  /** One PodDisruptionBudget per regional Deployment. */
  pdb: YamlValue[];
  /** One KEDA ScaledObject per regional Deployment (use it instead of the HPA, not with it). */
  keda: YamlValue[];
  /** A ConfigMap holding the Grafana dashboard (picked up by Grafana's dashboard sidecar). */
  dashboard: YamlValue[];
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function dnsLabel(value: unknown, option: string): string {
  const s = assertString(value, option);
  if (!DNS_LABEL.test(s)) {
    throw new ValidationError(
      `${option} must be a DNS label (lowercase letters, digits and '-', at most 63), received ${describeValue(s)}`,
      { option },
    );
  }
  return s;
}

/** One alert of the PrometheusRule. */
interface Alert {
  alert: string;
  expr: string;
  for: string;
  severity: 'warning' | 'critical';
  summary: string;
}

/** The alerts, with metric names under `p` (the metrics prefix). */
export function alertRules(p = 'azscale_'): YamlValue[] {
  const alerts: Alert[] = [
    {
      alert: 'AzscaleCircuitOpen',
      expr: `max by (circuit) (${p}resilience_circuit_open) > 0`,
      for: '1m',
      severity: 'warning',
      summary: 'Circuit {{ $labels.circuit }} is open: calls fail fast to the fallback.',
    },
    {
      alert: 'AzscaleQueueGrowing',
      expr: `max by (queue) (deriv(${p}worker_queue_depth[10m])) > 0 and max by (queue) (${p}worker_queue_depth) > 100`,
      for: '10m',
      severity: 'warning',
      summary: 'Queue {{ $labels.queue }} has grown for 10 minutes: workers do not keep up.',
    },
    {
      alert: 'AzscaleBudgetAbove80Percent',
      expr: `max(${p}scaling_spend_hour_dollars) / max(${p}scaling_budget_hour_dollars) > 0.8`,
      for: '5m',
      severity: 'warning',
      summary: 'This hour’s spend is above 80 % of the hourly budget; scale-ups will be refused.',
    },
    {
      alert: 'AzscaleReplicaLag',
      expr: `max by (node) (${p}db_replica_lag_seconds) > 5`,
      for: '2m',
      severity: 'warning',
      summary: 'Replica {{ $labels.node }} lags the primary by more than 5 s.',
    },
    {
      alert: 'AzscaleDeadLettersRising',
      expr: `max by (queue) (delta(${p}worker_dead_letters[15m])) > 0`,
      for: '5m',
      severity: 'critical',
      summary: 'Tasks of queue {{ $labels.queue }} are dead-lettered: they failed every attempt.',
    },
  ];
  return alerts.map((a) => ({
    alert: a.alert,
    expr: a.expr,
    for: a.for,
    labels: { severity: a.severity },
    annotations: { summary: a.summary },
  }));
}

/** One panel: a title, a unit and the PromQL of its series (legend by label). */
interface PanelSpec {
  title: string;
  unit: string;
  targets: { expr: string; legend: string }[];
}

/** The dashboard's panels, with metric names under `p`. */
export function dashboardPanels(p = 'azscale_'): PanelSpec[] {
  return [
    {
      title: 'Requests per second',
      unit: 'reqps',
      targets: [{ expr: `sum(rate(${p}http_requests_total[1m]))`, legend: 'requests' }],
    },
    {
      title: 'Error ratio',
      unit: 'percentunit',
      targets: [
        {
          expr: `sum(rate(${p}http_errors_total[5m])) / sum(rate(${p}http_requests_total[5m]))`,
          legend: '5xx',
        },
      ],
    },
    {
      title: 'p95 latency by route',
      unit: 's',
      targets: [
        {
          expr: `histogram_quantile(0.95, sum by (le, route) (rate(${p}http_request_duration_seconds_bucket[5m])))`,
          legend: '{{route}}',
        },
      ],
    },
    {
      title: 'Queue depth',
      unit: 'short',
      targets: [
        { expr: `max by (queue) (${p}worker_queue_depth)`, legend: '{{queue}} queued' },
        { expr: `max by (queue) (${p}worker_tasks_delayed)`, legend: '{{queue}} delayed' },
        { expr: `max by (queue) (${p}worker_tasks_processing)`, legend: '{{queue}} processing' },
      ],
    },
    {
      title: 'Tasks per second',
      unit: 'ops',
      targets: [
        {
          expr: `sum by (queue) (rate(${p}worker_tasks_completed_total[5m]))`,
          legend: '{{queue}} completed',
        },
        {
          expr: `sum by (queue) (rate(${p}worker_tasks_failed_total[5m]))`,
          legend: '{{queue}} failed',
        },
      ],
    },
    {
      title: 'Dead letters',
      unit: 'short',
      targets: [{ expr: `max by (queue) (${p}worker_dead_letters)`, legend: '{{queue}}' }],
    },
    {
      title: 'Circuits open',
      unit: 'bool',
      targets: [{ expr: `max by (circuit) (${p}resilience_circuit_open)`, legend: '{{circuit}}' }],
    },
    {
      title: 'Spend this hour vs budget',
      unit: 'currencyUSD',
      targets: [
        { expr: `max(${p}scaling_spend_hour_dollars)`, legend: 'spend' },
        { expr: `max(${p}scaling_budget_hour_dollars)`, legend: 'budget' },
      ],
    },
    {
      title: 'Replica lag',
      unit: 's',
      targets: [{ expr: `max by (node) (${p}db_replica_lag_seconds)`, legend: '{{node}}' }],
    },
    {
      title: 'Cache hit ratio',
      unit: 'percentunit',
      targets: [
        {
          expr: `sum(rate(${p}cache_hits_total[5m])) / (sum(rate(${p}cache_hits_total[5m])) + sum(rate(${p}cache_misses_total[5m])))`,
          legend: 'hits',
        },
      ],
    },
  ];
}

/** The Grafana dashboard (JSON model, schemaVersion 39) with a Prometheus data source variable. */
export function grafanaDashboard(p = 'azscale_'): YamlValue {
  const panels = dashboardPanels(p).map((panel, i) => ({
    id: i + 1,
    type: 'timeseries',
    title: panel.title,
    // Grafana's own variable syntax (the data source picked on import), not a JS template.
    datasource: { type: 'prometheus', uid: '$' + '{datasource}' },
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    fieldConfig: { defaults: { unit: panel.unit }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom' } },
    targets: panel.targets.map((t, j) => ({
      refId: String.fromCharCode(65 + j),
      expr: t.expr,
      legendFormat: t.legend,
    })),
  }));
  return {
    uid: 'azscale-overview',
    title: 'azscale overview',
    tags: ['azscale'],
    timezone: 'utc',
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    templating: {
      list: [
        {
          name: 'datasource',
          type: 'datasource',
          query: 'prometheus',
          label: 'Prometheus',
        },
      ],
    },
    panels,
  };
}

/**
 * Builds the operations manifests. Pure: same options, same objects.
 * @throws ValidationError for bad names, counts or an empty region list.
 */
export function buildOpsManifests(options: OpsOptions): OpsManifests {
  if (!Array.isArray(options.regions) || options.regions.length === 0) {
    throw new ValidationError('regions must list at least one region, e.g. us-east,eu-west', {
      option: 'regions',
    });
  }
  const regions = options.regions.map((r, i) => dnsLabel(r, `regions[${i}]`));
  const name = dnsLabel(options.name ?? 'agent-service', 'name');
  const namespace = dnsLabel(options.namespace ?? 'production', 'namespace');
  const p = assertString(options.metricsPrefix ?? 'azscale_', 'metricsPrefix');
  if (p !== '' && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(p)) {
    throw new ValidationError(
      `metricsPrefix must be a metric name prefix, received ${describeValue(p)}`,
      {
        option: 'metricsPrefix',
      },
    );
  }
  const queue = assertString(options.queue ?? 'agent-tasks', 'queue');
  const queuePrefix = assertString(options.queuePrefix ?? 'azs:worker:', 'queuePrefix');
  const redisAddress = assertString(options.redisAddress ?? 'redis:6379', 'redisAddress');
  if (!/^[^\s:]+:\d{1,5}$/.test(redisAddress)) {
    throw new ValidationError(
      `redisAddress must be host:port, received ${describeValue(redisAddress)}`,
      {
        option: 'redisAddress',
      },
    );
  }
  const lag = assertNumber(options.tasksPerReplica ?? 30, 'tasksPerReplica', {
    integer: true,
    min: 1,
  });
  const minReplicas = assertNumber(options.minReplicas ?? 4, 'minReplicas', {
    integer: true,
    min: 0,
  });
  const maxReplicas = assertNumber(options.maxReplicas ?? 50, 'maxReplicas', {
    integer: true,
    min: Math.max(1, minReplicas),
  });
  const release = dnsLabel(options.prometheusRelease ?? 'prometheus', 'prometheusRelease');
  const c = SERVICE_CONTRACT;

  const metricsService: YamlValue = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `${name}-metrics`, namespace, labels: { app: name } },
    spec: {
      clusterIP: 'None',
      selector: { app: name },
      ports: [{ name: 'http', port: c.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
  const serviceMonitor: YamlValue = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name, namespace, labels: { app: name, release } },
    spec: {
      selector: { matchLabels: { app: name } },
      namespaceSelector: { matchNames: [namespace] },
      endpoints: [{ port: 'http', path: c.metricsPath, interval: '15s', scrapeTimeout: '10s' }],
    },
  };
  const rule: YamlValue = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: `${name}-alerts`, namespace, labels: { app: name, release } },
    spec: { groups: [{ name: 'azscale', rules: alertRules(p) }] },
  };
  const pdb = (region: string): YamlValue => ({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: `${name}-${region}`, namespace },
    spec: {
      // Half the pods stay through a node drain; the rest finish their tasks and hand over.
      minAvailable: '50%',
      selector: { matchLabels: { app: name, region } },
    },
  });
  const [stream, priorityStream] = queueStreams(queue, queuePrefix);
  const trigger = (s: string): YamlValue => ({
    type: 'redis-streams',
    metadata: {
      address: redisAddress,
      stream: s,
      consumerGroup: QUEUE_CONSUMER_GROUP,
      // Entries not yet delivered to the group: the backlog (needs Redis 7).
      lagCount: String(lag),
      activationLagCount: '0',
    },
  });
  const scaledObject = (region: string): YamlValue => ({
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: `${name}-${region}`, namespace },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: `${name}-${region}` },
      minReplicaCount: minReplicas,
      maxReplicaCount: maxReplicas,
      pollingInterval: 15,
      cooldownPeriod: 300,
      triggers: [trigger(stream), trigger(priorityStream)],
    },
  });
  const dashboardConfigMap: YamlValue = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${name}-dashboard`,
      namespace: 'monitoring',
      labels: { grafana_dashboard: '1' },
    },
    data: { 'azscale-overview.json': `${JSON.stringify(grafanaDashboard(p), null, 2)}\n` },
  };
  return {
    servicemonitor: [metricsService, serviceMonitor],
    rules: [rule],
    pdb: regions.map(pdb),
    keda: regions.map(scaledObject),
    dashboard: [dashboardConfigMap],
  };
}
