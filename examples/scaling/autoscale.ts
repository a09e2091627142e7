/**
 * A small control loop: size the process from a preset, ask the advisor every 15 s, and let the
 * shared hourly budget decide how far to scale out. LLM calls go through a budget guard.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/scaling/autoscale.ts
 */
import {
  CostOptimizer,
  ScalingAdvisor,
  type ScalingSnapshot,
  calculateWorkers,
  getConfigForScale,
} from '../../src/scaling/index.js';
import { isBudgetExceededError } from '../../src/core/errors.js';

const preset = getConfigForScale(process.env.SCALE ?? 'medium');
const workers = calculateWorkers({ workload: 'io' });
const advisor = new ScalingAdvisor();
const optimizer = new CostOptimizer({ hourlyBudget: 100, redis: process.env.REDIS_URL });
const costPerInstance = optimizer.instancePrice(optimizer.optimizeInstanceTypes('general'));

optimizer.on('budgetExceeded', (e) => {
  process.stderr.write(`budget: $${e.spent.toFixed(2)} of $${e.budget} (${e.source})\n`);
});

// Stand-in for your LLM client: records what each call cost.
const ask = optimizer.guard(async (prompt: string) => {
  await optimizer.recordLLMUsage({
    model: 'gpt-4o-mini',
    inputTokens: prompt.length * 4,
    outputTokens: 200,
  });
  return `reply to ${prompt}`;
});

let replicas = 2;
async function tick(snapshot: ScalingSnapshot) {
  const advice = advisor.assess({ ...snapshot, replicas, maxReplicas: 50 });
  if (advice.scale === 'up' && advice.direction === 'horizontal') {
    replicas = await optimizer.desiredReplicas({
      current: replicas,
      metric: (snapshot.cpu ?? 0.7) * 100,
      target: 70,
      min: 2,
      max: 50,
      costPerInstance,
    });
  } else if (advice.scale === 'down') {
    replicas = Math.max(2, replicas - 1);
  }
  process.stdout.write(
    `${advice.scale} ${advice.direction} ${advice.bottleneck ?? '-'} -> ${replicas} replicas; ${advice.reasons.join('; ')}\n`,
  );
}

process.stdout.write(
  `preset ${JSON.stringify(preset)}, ${workers} workers, $${costPerInstance}/h per instance\n`,
);
try {
  process.stdout.write(`${await ask('hello')}\n`);
} catch (e) {
  if (!isBudgetExceededError(e)) throw e;
}
const t0 = Date.now();
for (let i = 0; i < 3; i++) {
  await tick({
    cpu: 0.92,
    p95LatencyMs: 2600,
    memory: 0.5,
    errorRate: 0.002,
    timestampMs: t0 + i * 30_000,
  });
}
await optimizer.close();
