/**
 * ECS service auto scaling on AWS Application Auto Scaling, the seed's aws/autoscaling.py on the
 * AWS SDK v3: register the service as a scalable target (4..50 tasks), then target-tracking
 * policies on CPU (70 %, scale-in cooldown 300 s, scale-out 60 s) and on ALB requests per target
 * (1000), plus, optionally, on the queue depth the service publishes to CloudWatch.
 *
 *   node --import tsx examples/deploy/aws/autoscaling.ts --cluster prod --service agent-service \
 *     --alb-resource-label app/my-alb/50dc6c495c0c9188/targetgroup/agent/943f017f100becff
 *   ... --dry-run   prints the requests instead of sending them
 *
 * Credentials and region come from the usual AWS chain (env, profile, instance role).
 */
import {
  ApplicationAutoScalingClient,
  PutScalingPolicyCommand,
  type PutScalingPolicyCommandInput,
  RegisterScalableTargetCommand,
  type RegisterScalableTargetCommandInput,
} from '@aws-sdk/client-application-auto-scaling';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

/** Options of {@link autoscalingRequests}. */
export interface AutoscalingOptions {
  /** ECS cluster name. */
  clusterName: string;
  /** ECS service name. */
  serviceName: string;
  /** Fewest tasks. @default 4 (the seed's) */
  minCapacity?: number;
  /** Most tasks. @default 50 (the seed's) */
  maxCapacity?: number;
  /** Average CPU utilisation to hold, percent. @default 70 */
  cpuTarget?: number;
  /**
   * The ALB target group's resource label, `app/<alb-name>/<alb-id>/targetgroup/<tg-name>/<tg-id>`.
   * (The seed builds it from the cluster and service names, which AWS rejects.) Without it, no
   * request-count policy is created.
   */
  albResourceLabel?: string;
  /** Requests per target per minute to hold. @default 1000 (the seed's) */
  requestsPerTarget?: number;
  /**
   * CloudWatch namespace where `queue_depth` (the service's `azscale_worker_queue_depth`) is
   * published, e.g. by the CloudWatch agent's Prometheus scraping. Without it, no queue policy.
   */
  queueMetricNamespace?: string;
  /** Queued tasks per running task to hold. @default 30 (the seed's HPA value) */
  queueDepthPerTask?: number;
}

/** The requests, in order: the target first, then one policy per metric. */
export function autoscalingRequests(o: AutoscalingOptions): {
  target: RegisterScalableTargetCommandInput;
  policies: PutScalingPolicyCommandInput[];
} {
  if (!o.clusterName || !o.serviceName) throw new Error('clusterName and serviceName are required');
  const min = o.minCapacity ?? 4;
  const max = o.maxCapacity ?? 50;
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min) {
    throw new Error(`capacity must be integers with 0 <= min <= max, received ${min}..${max}`);
  }
  const common = {
    ServiceNamespace: 'ecs',
    ResourceId: `service/${o.clusterName}/${o.serviceName}`,
    ScalableDimension: 'ecs:service:DesiredCount',
  } as const;
  const policies: PutScalingPolicyCommandInput[] = [
    {
      ...common,
      PolicyName: `${o.serviceName}-cpu-scaling`,
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        TargetValue: o.cpuTarget ?? 70,
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        ScaleInCooldown: 300,
        ScaleOutCooldown: 60,
      },
    },
  ];
  if (o.albResourceLabel) {
    if (!/^app\/[^/]+\/[^/]+\/targetgroup\/[^/]+\/[^/]+$/.test(o.albResourceLabel)) {
      throw new Error(
        'albResourceLabel must look like app/<alb-name>/<alb-id>/targetgroup/<tg-name>/<tg-id>',
      );
    }
    policies.push({
      ...common,
      PolicyName: `${o.serviceName}-request-scaling`,
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        TargetValue: o.requestsPerTarget ?? 1000,
        PredefinedMetricSpecification: {
          PredefinedMetricType: 'ALBRequestCountPerTarget',
          ResourceLabel: o.albResourceLabel,
        },
        ScaleInCooldown: 300,
        ScaleOutCooldown: 60,
      },
    });
  }
  if (o.queueMetricNamespace) {
    policies.push({
      ...common,
      PolicyName: `${o.serviceName}-queue-scaling`,
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: {
        // Backlog per task: queue depth divided by the running task count (metric math).
        TargetValue: o.queueDepthPerTask ?? 30,
        CustomizedMetricSpecification: {
          Metrics: [
            {
              Id: 'depth',
              ReturnData: false,
              MetricStat: {
                Metric: {
                  Namespace: o.queueMetricNamespace,
                  MetricName: 'queue_depth',
                  Dimensions: [{ Name: 'ServiceName', Value: o.serviceName }],
                },
                Stat: 'Maximum',
              },
            },
            {
              Id: 'tasks',
              ReturnData: false,
              MetricStat: {
                Metric: {
                  Namespace: 'ECS/ContainerInsights',
                  MetricName: 'RunningTaskCount',
                  Dimensions: [
                    { Name: 'ClusterName', Value: o.clusterName },
                    { Name: 'ServiceName', Value: o.serviceName },
                  ],
                },
                Stat: 'Average',
              },
            },
            { Id: 'backlog', Expression: 'depth / MAX([tasks, 1])', ReturnData: true },
          ],
        },
        ScaleInCooldown: 300,
        ScaleOutCooldown: 60,
      },
    });
  }
  return {
    target: { ...common, MinCapacity: min, MaxCapacity: max },
    policies,
  };
}

/**
 * Registers the target and puts every policy. Returns the policy ARNs in order.
 *
 * @example
 * const client = new ApplicationAutoScalingClient({ region: 'us-east-1' });
 * await setupAutoscaling(client, { clusterName: 'prod', serviceName: 'agent-service' });
 */
export async function setupAutoscaling(
  client: ApplicationAutoScalingClient,
  options: AutoscalingOptions,
): Promise<string[]> {
  const { target, policies } = autoscalingRequests(options);
  await client.send(new RegisterScalableTargetCommand(target));
  const arns: string[] = [];
  for (const p of policies) {
    const out = await client.send(new PutScalingPolicyCommand(p));
    arns.push(out.PolicyARN ?? '');
  }
  return arns;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'string' },
      service: { type: 'string' },
      min: { type: 'string' },
      max: { type: 'string' },
      'alb-resource-label': { type: 'string' },
      'queue-metric-namespace': { type: 'string' },
      region: { type: 'string' },
      endpoint: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
  });
  if (!values.cluster || !values.service) {
    process.stderr.write('usage: autoscaling.ts --cluster NAME --service NAME [--dry-run] ...\n');
    process.exitCode = 2;
    return;
  }
  const options: AutoscalingOptions = {
    clusterName: values.cluster,
    serviceName: values.service,
    minCapacity: values.min === undefined ? undefined : Number(values.min),
    maxCapacity: values.max === undefined ? undefined : Number(values.max),
    albResourceLabel: values['alb-resource-label'],
    queueMetricNamespace: values['queue-metric-namespace'],
  };
  if (values['dry-run']) {
    process.stdout.write(`${JSON.stringify(autoscalingRequests(options), null, 2)}\n`);
    return;
  }
  const client = new ApplicationAutoScalingClient({
    ...(values.region ? { region: values.region } : {}),
    ...(values.endpoint ? { endpoint: values.endpoint } : {}),
  });
  try {
    const arns = await setupAutoscaling(client, options);
    for (const arn of arns) process.stdout.write(`policy ${arn}\n`);
  } finally {
    client.destroy();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`autoscaling: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
