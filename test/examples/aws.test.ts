/**
 * examples/deploy/aws/autoscaling.ts drives the real AWS SDK v3 client; here against a local
 * endpoint that records what the SDK sends (the Application Auto Scaling JSON protocol), so the
 * requests are checked as AWS would receive them.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationAutoScalingClient } from '@aws-sdk/client-application-auto-scaling';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoscalingRequests, setupAutoscaling } from '../../examples/deploy/aws/autoscaling.js';
import { spawnTsx } from './helpers.js';

describe('AWS Application Auto Scaling setup', () => {
  let server: Server;
  let endpoint: string;
  // biome-ignore lint/suspicious/noExplicitAny: recorded JSON bodies
  const calls: { target: string; body: Record<string, any> }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (d) => (text += d));
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        const body = JSON.parse(text);
        calls.push({ target, body });
        const op = target.split('.').pop();
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          JSON.stringify(
            op === 'PutScalingPolicy'
              ? {
                  PolicyARN: `arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:${body.PolicyName}`,
                  Alarms: [],
                }
              : {
                  ScalableTargetARN:
                    'arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/x',
                },
          ),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("registers the ECS service and puts the seed's policies, plus the queue policy", async () => {
    const client = new ApplicationAutoScalingClient({
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' },
    });
    const arns = await setupAutoscaling(client, {
      clusterName: 'prod',
      serviceName: 'agent-service',
      albResourceLabel: 'app/agent-alb/50dc6c495c0c9188/targetgroup/agent/943f017f100becff',
      queueMetricNamespace: 'AgentService',
    });
    client.destroy();
    expect(calls.map((c) => c.target)).toEqual([
      'AnyScaleFrontendService.RegisterScalableTarget',
      'AnyScaleFrontendService.PutScalingPolicy',
      'AnyScaleFrontendService.PutScalingPolicy',
      'AnyScaleFrontendService.PutScalingPolicy',
    ]);
    expect(calls[0]!.body).toEqual({
      ServiceNamespace: 'ecs',
      ResourceId: 'service/prod/agent-service',
      ScalableDimension: 'ecs:service:DesiredCount',
      MinCapacity: 4,
      MaxCapacity: 50,
    });
    const cpu = calls[1]!.body;
    expect(cpu.PolicyName).toBe('agent-service-cpu-scaling');
    expect(cpu.TargetTrackingScalingPolicyConfiguration).toEqual({
      TargetValue: 70,
      PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
      ScaleInCooldown: 300,
      ScaleOutCooldown: 60,
    });
    const req = calls[2]!.body.TargetTrackingScalingPolicyConfiguration;
    expect(req.TargetValue).toBe(1000);
    expect(req.PredefinedMetricSpecification.PredefinedMetricType).toBe('ALBRequestCountPerTarget');
    const queue = calls[3]!.body.TargetTrackingScalingPolicyConfiguration;
    expect(queue.CustomizedMetricSpecification.Metrics.map((m: { Id: string }) => m.Id)).toEqual([
      'depth',
      'tasks',
      'backlog',
    ]);
    expect(queue.CustomizedMetricSpecification.Metrics[0].MetricStat.Metric.MetricName).toBe(
      'queue_depth',
    );
    expect(arns).toEqual([
      'arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:agent-service-cpu-scaling',
      'arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:agent-service-request-scaling',
      'arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:agent-service-queue-scaling',
    ]);
  });

  it('refuses the seed-style ALB label and bad capacities', () => {
    expect(() =>
      autoscalingRequests({ clusterName: 'c', serviceName: 's', albResourceLabel: 'app/c/s' }),
    ).toThrow(/targetgroup/);
    expect(() =>
      autoscalingRequests({ clusterName: 'c', serviceName: 's', minCapacity: 10, maxCapacity: 5 }),
    ).toThrow(/capacity/);
    expect(autoscalingRequests({ clusterName: 'c', serviceName: 's' }).policies).toHaveLength(1);
  });

  it('runs as a script with --dry-run', async () => {
    const child = spawnTsx(
      'examples/deploy/aws/autoscaling.ts',
      ['--cluster', 'prod', '--service', 'agent', '--dry-run'],
      process.env,
    );
    expect(await child.exited).toBe(0);
    const out = JSON.parse(child.output());
    expect(out.target.ResourceId).toBe('service/prod/agent');
    expect(out.policies[0].PolicyName).toBe('agent-cpu-scaling');
  });
});
