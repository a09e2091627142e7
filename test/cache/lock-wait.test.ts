/**
 * Defect 7: waiting for another instance's lock used to spend the call's backendTimeout budget,
 * poll by poll; once spent, the waiter "degraded" and ran the loader itself (8 instances ran an
 * 8 s loader 7 times). Waiting is bounded by lock.wait; backendTimeout bounds each round trip.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ready(), retried: connecting on a loaded machine may take longer than a short backendTimeout. */
async function readyAll(caches: DistributedCache[]): Promise<void> {
  for (const c of caches) {
    for (let i = 0; ; i++) {
      try {
        await c.ready();
        break;
      } catch (e) {
        if (i >= 50) throw e;
        await sleep(100);
      }
    }
  }
}

describe.each(['redis', 'cluster'] as const)('lock wait (%s)', (mode) => {
  const caches: DistributedCache[] = [];
  afterAll(async () => {
    await Promise.all(caches.map((c) => c.close()));
  });
  const redisOf = () => {
    const s = servers();
    return mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
  };

  it('8 instances, a 5 s loader, a shorter backendTimeout: the loader runs exactly once', async () => {
    const prefix = uniquePrefix('lockwait');
    const instances = Array.from(
      { length: 8 },
      () =>
        new DistributedCache({
          redis: redisOf(),
          prefix,
          // Far shorter than the loader: only the lock's wait may bound the waiting. (Polling
          // every 1 ms spends a shared 1.5 s budget well within the 5 s load.) Not shorter: one
          // round trip on a loaded machine can take half a second, and would count as an error.
          backendTimeout: 1.5,
          circuit: false,
          lock: { ttl: 30, wait: 30, poll: 0.001 },
        }),
    );
    caches.push(...instances);
    await readyAll(instances);
    let runs = 0;
    const loader = async () => {
      runs++;
      await sleep(5000);
      return `loaded-${runs}`;
    };
    const errors: string[] = [];
    for (const c of instances) c.on('backendError', (e) => errors.push(e.error.message));
    const values = await Promise.all(instances.map((c) => c.getOrSet('report', loader, 60)));
    expect(runs).toBe(1);
    expect(new Set(values)).toEqual(new Set(['loaded-1']));
    expect(errors).toEqual([]);
  }, 30_000);

  it('a waiter gives up after lock.wait (not before) and runs the loader itself', async () => {
    const prefix = uniquePrefix('lockgiveup');
    const holder = new DistributedCache({ redis: redisOf(), prefix, backendTimeout: 0.5 });
    const waiter = new DistributedCache({ redis: redisOf(), prefix, backendTimeout: 0.5 });
    caches.push(holder, waiter);
    await readyAll([holder, waiter]);
    let holderRuns = 0;
    let waiterRuns = 0;
    const held = holder.getOrSet(
      'slow',
      async () => {
        holderRuns++;
        await sleep(5000);
        return 'from-holder';
      },
      { ttl: 60, lock: { ttl: 30, wait: 30 } },
    );
    // The holder runs its loader once it holds the lock: wait for that, not for a fixed head
    // start a loaded machine may overrun.
    for (let i = 0; i < 500 && holderRuns === 0; i++) await sleep(10);
    expect(holderRuns).toBe(1);
    const t0 = performance.now();
    const v = await waiter.getOrSet(
      'slow',
      async () => {
        waiterRuns++;
        return 'from-waiter';
      },
      { ttl: 60, lock: { ttl: 30, wait: 2, poll: 0.01 } },
    );
    const waited = performance.now() - t0;
    expect(v).toBe('from-waiter');
    expect(waiterRuns).toBe(1);
    // It waited for lock.wait (2 s), far past its backendTimeout (0.5 s).
    expect(waited).toBeGreaterThanOrEqual(1950);
    expect(await held).toBe('from-holder');
    expect(holderRuns).toBe(1);
  }, 30_000);
});
