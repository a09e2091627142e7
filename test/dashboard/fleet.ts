/**
 * A small fleet on the shared test Redis for dashboard tests: a queue with a worker whose
 * handler fails tasks marked `fail` until `heal()`, a shared limiter, rate limiter, breaker and
 * cost optimizer, and the dashboard served over real HTTP.
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { type DashboardOptions, createDashboard } from '../../src/dashboard/index.js';
import { circuitBreaker } from '../../src/resilience/circuit.js';
import { ConcurrencyLimiter, RateLimiter } from '../../src/resilience/index.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { close, listen } from '../express/helpers.js';
import { servers, uniquePrefix } from '../harness/env.js';

export const TOKEN = 'test-token-7f3a';

export async function startFleet(extra: Partial<DashboardOptions> = {}) {
  const redisUrl = servers().redisUrl;
  const prefix = uniquePrefix('dash');
  const client = new Redis(redisUrl);
  const queue = new TaskQueue({ name: 'jobs', redis: client, prefix: `${prefix}w:` });
  let healthy = false;
  const runs: unknown[] = [];
  const worker = new BackgroundWorker({
    queue,
    handler: async (data: { fail?: boolean; note?: string }) => {
      runs.push(data);
      if (data?.fail && !healthy) {
        throw new Error(`upstream at redis://10.1.2.3:6379 refused ${data.note ?? ''}`);
      }
      return { ok: true };
    },
    attempts: 1,
  });
  await worker.start();
  const limiter = new ConcurrencyLimiter({
    concurrency: 4,
    redis: client,
    key: 'llm',
    prefix: `${prefix}l:`,
  });
  const rate = new RateLimiter({
    redis: client,
    key: 'openai',
    prefix: `${prefix}r:`,
    requestsPerMinute: 60,
    tokensPerMinute: 6000,
  });
  const breaker = circuitBreaker({ name: `${prefix}b`, failureThreshold: 1 });
  const optimizer = new CostOptimizer({ redis: client, prefix: `${prefix}c:`, hourlyBudget: 20 });
  const dashboard = createDashboard({
    queues: [queue],
    breakers: [breaker],
    limiters: [limiter],
    rateLimiters: [rate],
    optimizer,
    readOnly: false,
    auth: TOKEN,
    ...extra,
  });
  const server = createServer((req, res) => dashboard(req, res));
  const origin = await listen(server);
  return {
    client,
    queue,
    worker,
    limiter,
    rate,
    breaker,
    optimizer,
    dashboard,
    runs,
    origin,
    base: `${origin}/dashboard`,
    heal: () => {
      healthy = true;
    },
    async stop() {
      await close(server);
      await dashboard.close();
      await worker.stop({ timeout: 5 });
      await Promise.all([queue.close(), limiter.close(), rate.close(), optimizer.close()]);
      await breaker.close();
      client.disconnect();
    },
  };
}

export type Fleet = Awaited<ReturnType<typeof startFleet>>;

/** Waits until `check` returns true (polling), or fails after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Headers of an authorised action. */
export function actionHeaders(token = TOKEN): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-azscale-action': '1',
    authorization: `Bearer ${token}`,
  };
}
