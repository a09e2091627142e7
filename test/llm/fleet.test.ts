/**
 * A fleet of real OS processes sharing one Redis and one stand-in provider over HTTP.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, uniquePrefix } from '../harness/env.js';
import { type LLMStandin, startLLMStandin } from '../harness/llm-standin.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./fixtures/llm-child.ts', import.meta.url));

let standin: LLMStandin;
beforeAll(async () => {
  standin = await startLLMStandin();
});
afterAll(async () => {
  await standin.close();
});

// biome-ignore lint/suspicious/noExplicitAny: each mode prints its own JSON shape
async function child(env: Record<string, string>): Promise<any> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], {
    env: childEnv({ AZS_LLM_BASE_URL: standin.baseURL, ...env }),
    timeout: 90_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string);
}

const model = (tag: string) => `fleet-${tag}-${Math.random().toString(36).slice(2, 8)}`;

describe('a fleet of processes sharing Redis', () => {
  it('two processes asking the same thing at once call the model once', async () => {
    const m = model('once');
    // A slow answer, so the second process arrives while the first holds the fleet lock.
    standin.behave(m, { delayMs: 1500 });
    const env = {
      AZS_LLM_MODE: 'once',
      AZS_LLM_MODEL: m,
      AZS_LLM_PREFIX: uniquePrefix('fleet'),
      AZS_LLM_START_AT: String(Date.now() + 8000),
    };
    const [a, b] = await Promise.all([child(env), child(env)]);
    expect(a.pid).not.toBe(b.pid);
    expect(standin.callsFor(m)).toBe(1);
    expect(a.text).toBe(b.text);
    // One called the model; the other waited on the fleet lock and read its entry (or, when it
    // started late on a loaded machine, found it cached).
    const sources = [a.source, b.source].sort();
    expect(sources).toContain('model');
    expect(['cache', 'peer']).toContain(sources.find((s) => s !== 'model'));
  });

  it('a tokens-per-minute budget holds across 3 processes', async () => {
    const m = model('tpm');
    const tpm = 1200;
    const estimate = 100;
    const runMs = 12_000;
    // The three start together once all are up (a barrier on Redis), then run for runMs each.
    const env = {
      AZS_LLM_MODE: 'tpm',
      AZS_LLM_MODEL: m,
      AZS_LLM_PREFIX: uniquePrefix('tpm'),
      AZS_LLM_TPM: String(tpm),
      AZS_LLM_ESTIMATE: String(estimate),
      AZS_LLM_FLEET: '3',
      AZS_LLM_RUN_MS: String(runMs),
    };
    const results = await Promise.all([child(env), child(env), child(env)]);
    const calls = standin.calls.filter((c) => c.model === m);
    const done = results.reduce((n, r) => n + r.done, 0);
    expect(calls.length).toBe(done);
    // The stand-in reports fewer tokens than estimated, so no correction adds to the budget.
    const ats = calls.map((c) => c.at);
    const spanS = (Math.max(...ats) - Math.min(...ats)) / 1000;
    expect(spanS).toBeLessThan(60);
    // All the calls fall in one minute. The limiter (GCRA) grants a minute's budget as a burst
    // and refills it at tpm/60 per second: what started may not exceed that, plus one request.
    const allowed = tpm + (tpm * Math.max(spanS, 0)) / 60 + estimate;
    expect(done * estimate).toBeLessThanOrEqual(allowed);
    // The budget was reached (the test measures a limit that bit), by more than one process.
    expect(done * estimate).toBeGreaterThanOrEqual(tpm);
    expect(results.filter((r) => r.done > 0).length).toBeGreaterThanOrEqual(2);
    // Unlimited, each process would have made hundreds of calls in the same time.
    expect(done).toBeLessThan(40);
  });

  it('the hourly budget stops calls fleet-wide within one request of being spent', async () => {
    const m = model('budget');
    const env = {
      AZS_LLM_MODE: 'budget',
      AZS_LLM_MODEL: m,
      AZS_LLM_PREFIX: uniquePrefix('budget'),
      AZS_LLM_BUDGET: '0.05',
      AZS_LLM_START_AT: String(Date.now() + 6000),
    };
    const results = await Promise.all([child(env), child(env), child(env)]);
    expect(results.every((r) => r.refused)).toBe(true);
    const crossedAt = results.map((r) => r.crossedAt).find((t) => t !== undefined) as number;
    expect(results.filter((r) => r.crossedAt !== undefined)).toHaveLength(1);
    const total = results.reduce((n, r) => n + r.starts.length, 0);
    expect(standin.callsFor(m)).toBe(total);
    // Once the spend crossed the budget, each process started at most the one call whose
    // budget check had already passed.
    for (const r of results) {
      expect(r.starts.filter((t: number) => t > crossedAt).length).toBeLessThanOrEqual(1);
    }
    expect(total).toBeGreaterThan(3);
  });
});
