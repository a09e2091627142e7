/**
 * Kubernetes manifests from the seed's presets: one Deployment per region behind one global
 * Service (k8s/multi-region.yaml), an HPA per regional Deployment on CPU, memory,
 * requests-per-second and queue depth with the seed's scale-up/down behaviour (k8s/hpa.yaml), and
 * the prometheus-adapter rules that turn the service's Prometheus counters into the two custom
 * metrics the HPA reads.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import { assertNumber, assertString } from '../core/validate.js';
import { getConfigForScale, type ResourcePreset } from '../scaling/index.js';
import type { YamlValue } from './yaml.js';

/** What the service exposes; the example service and these manifests must agree (tested). */
export const SERVICE_CONTRACT = Object.freeze({
  /** Container port the service listens on (`PORT`). */
  port: 3000,
  /** Liveness probe path. */
  livenessPath: '/healthz',
  /** Readiness probe path. */
  readinessPath: '/readyz',
  /** Prometheus scrape path. */
  metricsPath: '/metrics',
  /** Counter of HTTP requests, the source of `http_requests_per_second`. */
  requestsCounter: 'azscale_http_requests_total',
  /** Gauge of tasks waiting in the queue, the source of `queue_depth`. */
  queueDepthGauge: 'azscale_worker_queue_depth',
  /** The custom metric names of the seed's HPA. */
  hpaRequestsMetric: 'http_requests_per_second',
  hpaQueueMetric: 'queue_depth',
});

/** Options of {@link buildManifests}. */
export interface ManifestOptions {
  /** Preset name (`small`, `medium`, `large`, `xlarge`): resources and worker counts. */
  scale: string;
  /** Region names, one Deployment and HPA each, e.g. `['us-east', 'eu-west']`. */
  regions: readonly string[];
  /** Container image, e.g. `registry.example.com/agent-service:1.0`. */
  image: string;
  /** App name: labels, Deployment and Service names. @default 'agent-service' */
  name?: string;
  /** Namespace. @default 'production' (the seed's) */
  namespace?: string;
  /** Replicas per region at rollout. @default 10 (the seed's) */
  replicas?: number;
  /** HPA minReplicas per region. @default 4 (the seed's) */
  minReplicas?: number;
  /** HPA maxReplicas per region. @default 50 (the seed's) */
  maxReplicas?: number;
  /** Public hostname for external-dns. @default 'agent.example.com' */
  hostname?: string;
  /** Secret holding `redis-url` (and optionally `database-url`). @default `<name>-secrets` */
  secretName?: string;
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

/** "4" -> "2", "500m" -> "250m": half a CPU quantity, in millicores. */
function halfCpu(limit: string): string {
  const milli = limit.endsWith('m') ? Number(limit.slice(0, -1)) : Number(limit) * 1000;
  return `${Math.max(1, Math.round(milli / 2))}m`;
}

/** "8Gi" -> "4Gi", "3Gi" -> "1536Mi". */
function halfMemory(limit: string): string {
  const m = /^(\d+)(Gi|Mi)$/.exec(limit);
  if (!m) return limit;
  const mi = (Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1)) / 2;
  return mi % 1024 === 0 ? `${mi / 1024}Gi` : `${Math.round(mi)}Mi`;
}

/** The seed's HPA behaviour: fast up (100 % or 5 pods a minute), slow down (300 s window). */
export const HPA_BEHAVIOR = Object.freeze({
  scaleUp: {
    stabilizationWindowSeconds: 60,
    policies: [
      { type: 'Percent', value: 100, periodSeconds: 60 },
      { type: 'Pods', value: 5, periodSeconds: 60 },
    ],
    selectPolicy: 'Max',
  },
  scaleDown: {
    stabilizationWindowSeconds: 300,
    policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }],
    selectPolicy: 'Min',
  },
});

/** The three groups of manifests, each a list of Kubernetes objects. */
export interface Manifests {
  /** The global Service and one Deployment per region. */
  multiRegion: YamlValue[];
  /** One HorizontalPodAutoscaler per regional Deployment. */
  hpa: YamlValue[];
  /** The prometheus-adapter ConfigMap (custom and external metric rules). */
  adapter: YamlValue[];
}

/**
 * Builds the manifests. Pure: same options, same objects.
 * @throws ValidationError for an unknown preset, an empty region list, bad names or counts.
 */
export function buildManifests(options: ManifestOptions): Manifests {
  const preset: ResourcePreset = getConfigForScale(options.scale);
  if (!Array.isArray(options.regions) || options.regions.length === 0) {
    throw new ValidationError('regions must list at least one region, e.g. us-east,eu-west', {
      option: 'regions',
    });
  }
  const regions = options.regions.map((r, i) => dnsLabel(r, `regions[${i}]`));
  if (new Set(regions).size !== regions.length) {
    throw new ValidationError('regions must not repeat a region', { option: 'regions' });
  }
  const image = assertString(options.image, 'image');
  if (/\s/.test(image)) {
    throw new ValidationError(`image must not contain spaces, received ${describeValue(image)}`, {
      option: 'image',
    });
  }
  const name = dnsLabel(options.name ?? 'agent-service', 'name');
  const namespace = dnsLabel(options.namespace ?? 'production', 'namespace');
  const replicas = assertNumber(options.replicas ?? 10, 'replicas', { integer: true, min: 1 });
  const minReplicas = assertNumber(options.minReplicas ?? 4, 'minReplicas', {
    integer: true,
    min: 1,
  });
  const maxReplicas = assertNumber(options.maxReplicas ?? 50, 'maxReplicas', {
    integer: true,
    min: minReplicas,
  });
  const hostname = assertString(options.hostname ?? 'agent.example.com', 'hostname');
  const secretName = dnsLabel(options.secretName ?? `${name}-secrets`, 'secretName');
  const c = SERVICE_CONTRACT;

  const service: YamlValue = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: `${name}-global`,
      namespace,
      annotations: { 'external-dns.alpha.kubernetes.io/hostname': hostname },
    },
    spec: {
      type: 'LoadBalancer',
      selector: { app: name },
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    },
  };

  const deployment = (region: string): YamlValue => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: `${name}-${region}`, namespace, labels: { app: name, region } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name, region } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: { app: name, region },
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(c.port),
            'prometheus.io/path': c.metricsPath,
          },
        },
        spec: {
          // Worker stop (30 s drain) + HTTP drain + the preStop pause must fit in here.
          terminationGracePeriodSeconds: 45,
          containers: [
            {
              name,
              image,
              ports: [{ name: 'http', containerPort: c.port, protocol: 'TCP' }],
              env: [
                { name: 'REGION', value: region },
                { name: 'HOST', value: '0.0.0.0' },
                { name: 'PORT', value: String(c.port) },
                { name: 'SCALE', value: options.scale.toLowerCase() },
                { name: 'WORKERS', value: String(preset.workers) },
                {
                  name: 'REDIS_URL',
                  valueFrom: { secretKeyRef: { name: secretName, key: 'redis-url' } },
                },
                {
                  name: 'DATABASE_URL',
                  valueFrom: {
                    secretKeyRef: { name: secretName, key: 'database-url', optional: true },
                  },
                },
              ],
              resources: {
                requests: {
                  cpu: halfCpu(preset.cpu_limit),
                  memory: halfMemory(preset.memory_limit),
                },
                limits: { cpu: preset.cpu_limit, memory: preset.memory_limit },
              },
              livenessProbe: {
                httpGet: { path: c.livenessPath, port: 'http' },
                periodSeconds: 10,
                timeoutSeconds: 2,
                failureThreshold: 3,
              },
              readinessProbe: {
                httpGet: { path: c.readinessPath, port: 'http' },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 2,
              },
              // Lets the endpoints controller drop the pod before SIGTERM starts the drain.
              lifecycle: { preStop: { sleep: { seconds: 5 } } },
            },
          ],
        },
      },
    },
  });

  const hpa = (region: string): YamlValue => ({
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: `${name}-${region}`, namespace },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: `${name}-${region}` },
      minReplicas,
      maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
        },
        {
          type: 'Resource',
          resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } },
        },
        {
          type: 'Pods',
          pods: {
            metric: { name: c.hpaRequestsMetric },
            target: { type: 'AverageValue', averageValue: '100' },
          },
        },
        {
          type: 'External',
          external: {
            metric: {
              name: c.hpaQueueMetric,
              selector: { matchLabels: { namespace, queue: 'agent-tasks' } },
            },
            target: { type: 'AverageValue', averageValue: '30' },
          },
        },
      ],
      behavior: structuredClone(HPA_BEHAVIOR) as unknown as YamlValue,
    },
  });

  const adapterRules = [
    'rules:',
    `- seriesQuery: '${c.requestsCounter}{namespace!="",pod!=""}'`,
    '  resources:',
    '    overrides:',
    '      namespace: {resource: namespace}',
    '      pod: {resource: pod}',
    '  name:',
    `    matches: "^${c.requestsCounter}$"`,
    `    as: "${c.hpaRequestsMetric}"`,
    "  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'",
    'externalRules:',
    `- seriesQuery: '${c.queueDepthGauge}{namespace!=""}'`,
    '  resources:',
    '    overrides:',
    '      namespace: {resource: namespace}',
    '  name:',
    `    matches: "^${c.queueDepthGauge}$"`,
    `    as: "${c.hpaQueueMetric}"`,
    // Every pod reports the same shared queue: take the max, not the sum.
    "  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'",
    '',
  ].join('\n');

  return {
    multiRegion: [service, ...regions.map(deployment)],
    hpa: regions.map(hpa),
    adapter: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'adapter-config', namespace: 'monitoring' },
        data: { 'config.yaml': adapterRules },
      },
    ],
  };
}
