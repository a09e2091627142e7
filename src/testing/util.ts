/** Small helpers the suites share: unique names per run, and waiting for a condition. */
import { randomBytes } from 'node:crypto';
import { sleep } from '../core/timers.js';

/**
 * @internal A name no other run (or parallel test file) uses: `azs-t-<what>-<hex>:`. The
 * suites put every key, queue and breaker under one, so they need no clean backend.
 */
export function uniqueName(what: string): string {
  return `azs-t-${what}-${randomBytes(6).toString('hex')}:`;
}

/**
 * @internal Polls `pred` until it holds. Generous by default: a remote backend on a loaded CI
 * machine is slow, and a suite must not fail because of it.
 */
export async function waitFor(
  pred: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await pred()) return;
    await sleep(10);
  }
  throw new Error(`azscale/testing: ${what} did not happen within ${timeoutMs} ms`);
}

/** @internal Keys spread over many hash slots (and, on a Cluster, over every node). */
export function manyKeys(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}k${i}:${(i * 7919) % 10007}`);
}

export { sleep };

/** @internal {@link waitFor} with a default description, for a test's own conditions. */
export function until(pred: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  return waitFor(pred, 'the awaited condition', timeoutMs);
}
