/**
 * Fleet-wide limits for an LLM provider: every replica of a service runs this same code against
 * one Redis, and the provider sees at most 10 requests in flight, 500 requests and 200k tokens a
 * minute, whatever the replica count. A provider outage opens one shared breaker for all.
 *
 *   REDIS_URL=redis://localhost:6379 LLM_BASE_URL=https://api.example.com \
 *     node --import tsx examples/resilience/llm-fleet.ts
 *
 * Without LLM_BASE_URL it starts a local stand-in provider on 127.0.0.1, so it runs offline.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConcurrencyLimiter,
  RateLimiter,
  circuit,
  closeCircuitBreakers,
  retry,
  sharedHttpPool,
  withTimeout,
} from '../../src/resilience/index.js';

const redis = process.env.REDIS_URL || undefined;
const pool = sharedHttpPool({ maxConnections: 100 });
const inFlight = new ConcurrencyLimiter({
  concurrency: 10,
  redis,
  key: 'llm:provider',
  queueTimeout: 30,
});
const budget = new RateLimiter({
  redis,
  key: 'llm:provider',
  requestsPerMinute: 500,
  tokensPerMinute: 200_000,
});

// The provider: LLM_BASE_URL, or a local stand-in that answers like one (started on demand).
let baseUrl = process.env.LLM_BASE_URL;
let standIn: ReturnType<typeof createServer> | undefined;
async function providerUrl(): Promise<string> {
  if (baseUrl) return baseUrl;
  standIn = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'ok' } }] }));
  });
  await new Promise<void>((resolve) => standIn?.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
  return baseUrl;
}

// Replace the path and body with your provider's API.
async function complete(prompt: string, signal: AbortSignal): Promise<string> {
  const res = await pool.fetch(`${await providerUrl()}/v1/chat/completions`, { signal });
  if (res.status === 429) {
    budget.penalize(Number(res.headers.get('retry-after') ?? 1));
    throw new Error('rate limited');
  }
  if (!res.ok) throw new Error(`provider error ${res.status}`);
  await res.text();
  return `answer to ${prompt}`;
}

const guarded = circuit(withTimeout(complete, 30), {
  name: 'llm:provider',
  redis,
  failureThreshold: 5,
  recoveryTimeout: 60,
  fallback: () => 'The assistant is busy, please try again shortly.',
});

export async function ask(prompt: string): Promise<string> {
  await budget.acquire({ tokens: prompt.length / 4 + 512 });
  return retry(() => inFlight.run(() => guarded(prompt)), { attempts: 3 });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await ask('What is horizontal scaling?'));
  await Promise.all([inFlight.close(), budget.close(), closeCircuitBreakers(), pool.close()]);
  standIn?.close();
}
