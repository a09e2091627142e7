import { afterAll, describe, expect, it } from 'vitest';
import {
  CancelledError,
  ClosedError,
  LimitExceededError,
  QueueTimeoutError,
  TimeoutError,
  ValidationError,
  isLimitExceededError,
  isTimeoutError,
} from '../../src/core/errors.js';
import { ConcurrencyLimiter, MemorySemaphoreStore, limit } from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(5);
  expect(cond()).toBe(true);
}

/** Runs `n` calls and records the most that were in flight at once. */
async function peak(limiter: ConcurrencyLimiter, n: number, holdMs: number, weight = 1) {
  let now = 0;
  let max = 0;
  await Promise.all(
    Array.from({ length: n }, () =>
      limiter.run(
        async () => {
          now += weight;
          max = Math.max(max, now);
          await sleep(holdMs);
          now -= weight;
        },
        { weight },
      ),
    ),
  );
  return max;
}

const backends = [
  {
    name: 'local (p-limit)',
    make: (o: Record<string, unknown>) => new ConcurrencyLimiter({ concurrency: 3, ...o }),
  },
  {
    name: 'memory lease store',
    make: (o: Record<string, unknown>) =>
      new ConcurrencyLimiter({
        concurrency: 3,
        store: new MemorySemaphoreStore(),
        pollInterval: 0.005,
        ...o,
      }),
  },
  {
    name: 'redis',
    make: (o: Record<string, unknown>) =>
      new ConcurrencyLimiter({
        concurrency: 3,
        redis: servers().redisUrl,
        key: uniquePrefix('l'),
        pollInterval: 0.01,
        ...o,
      }),
  },
  {
    name: 'cluster',
    make: (o: Record<string, unknown>) =>
      new ConcurrencyLimiter({
        concurrency: 3,
        redis: { nodes: servers().clusterNodes },
        key: uniquePrefix('l'),
        pollInterval: 0.01,
        ...o,
      }),
  },
] as const;

describe.each(backends)('ConcurrencyLimiter: $name', ({ make }) => {
  const made: ConcurrencyLimiter[] = [];
  // Warmed up: the first call connects to Redis, which must not count as queue time below.
  const mk = async (o: Record<string, unknown> = {}) => {
    const l = make(o);
    made.push(l);
    await l.run(() => 1);
    return l;
  };
  afterAll(() => Promise.all(made.map((l) => l.close())));

  it('never runs more than `concurrency` at once, and reaches it', async () => {
    expect(await peak(await mk(), 12, 20)).toBe(3);
  });

  it('counts weights against the limit', async () => {
    const l = await mk();
    let now = 0;
    let max = 0;
    const call = (w: number) =>
      l.run(
        async () => {
          now += w;
          max = Math.max(max, now);
          await sleep(15);
          now -= w;
        },
        { weight: w },
      );
    await Promise.all([call(2), call(2), call(1), call(3), call(1), call(2)]);
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBeGreaterThanOrEqual(2);
  });

  it('activeCount and pendingCount reflect this process', async () => {
    const l = await mk();
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runs = Array.from({ length: 5 }, () => l.run(() => gate));
    await until(() => l.activeCount === 3);
    await sleep(30);
    expect(l.activeCount).toBe(3);
    expect(l.pendingCount).toBe(2);
    expect(await l.inFlight()).toBe(3);
    release();
    await Promise.all(runs);
    expect(l.activeCount).toBe(0);
    expect(l.pendingCount).toBe(0);
  });

  it('refuses beyond maxQueue at once with LimitExceededError', async () => {
    const l = await mk({ maxQueue: 2 });
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const ok = Array.from({ length: 5 }, () => l.run(() => gate));
    await until(() => l.activeCount === 3);
    const e = await l.run(() => 1).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(LimitExceededError);
    release();
    await Promise.all(ok);
  });

  it('queueTimeout: a caller that waits too long gets QueueTimeoutError; the slot holder is unaffected', async () => {
    // 1 s, not 0.1: the three holders take their slots through the same limiter, and one round
    // trip on a loaded Cluster took longer than 0.1 s (a holder got the QueueTimeoutError).
    const l = await mk({ queueTimeout: 1 });
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const holders = Array.from({ length: 3 }, () => l.run(() => gate));
    await until(() => l.activeCount === 3);
    const t0 = Date.now();
    const e = await l.run(() => 'never').catch((x: unknown) => x);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    expect(e).toBeInstanceOf(QueueTimeoutError);
    expect(isLimitExceededError(e)).toBe(true);
    expect(isTimeoutError(e)).toBe(true);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(l.pendingCount).toBe(0);
    release();
    await Promise.all(holders);
    // Run time is not limited by queueTimeout. (A limiter of its own with more room: getting a
    // free slot is one round trip, which a loaded machine can stretch past 100 ms on a Cluster.)
    const roomy = await mk({ queueTimeout: 0.5 });
    await expect(roomy.run(() => sleep(800).then(() => 'slow but fine'))).resolves.toBe(
      'slow but fine',
    );
  });

  it('an aborted signal cancels the wait and frees the queue place', async () => {
    const l = await mk();
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const holders = Array.from({ length: 3 }, () => l.run(() => gate));
    await until(() => l.activeCount === 3);
    const ac = new AbortController();
    let ran = false;
    const waiting = l.run(
      () => {
        ran = true;
      },
      { signal: ac.signal },
    );
    await sleep(20);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    expect(l.pendingCount).toBe(0);
    release();
    await Promise.all(holders);
    expect(ran).toBe(false);
    // Already aborted: refused before queueing.
    await expect(l.run(() => 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      CancelledError,
    );
  });

  it('passes a signal to the function and returns its value; errors propagate and free the slot', async () => {
    const l = await mk();
    const ac = new AbortController();
    const got = await l.run((signal) => signal instanceof AbortSignal, { signal: ac.signal });
    expect(got).toBe(true);
    await expect(l.run(() => Promise.reject(new Error('inner')))).rejects.toThrow('inner');
    expect(await peak(l, 6, 40)).toBe(3);
  });

  it('rejects bad input with ValidationError', async () => {
    const l = await mk();
    await expect(l.run(42 as never)).rejects.toBeInstanceOf(ValidationError);
    await expect(l.run(() => 1, { weight: 4 })).rejects.toMatchObject({ option: 'weight' });
    await expect(l.run(() => 1, { weight: 0 })).rejects.toMatchObject({ option: 'weight' });
    await expect(l.run(() => 1, { weight: Number.NaN })).rejects.toMatchObject({
      option: 'weight',
    });
    await expect(l.run(() => 1, { signal: 'x' as never })).rejects.toMatchObject({
      option: 'signal',
    });
  });

  it('close fails waiting callers with ClosedError and refuses new ones', async () => {
    const l = make({});
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const holders = Array.from({ length: 3 }, () => l.run(() => gate));
    await sleep(30);
    const waiting = l.run(() => 1);
    await sleep(10);
    const closing = l.close();
    if (l.distributed) await expect(waiting).rejects.toBeInstanceOf(ClosedError);
    release();
    await Promise.allSettled(holders);
    await closing;
    await expect(l.run(() => 1)).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('ConcurrencyLimiter constructor', () => {
  it('rejects bad options naming them', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ concurrency: 0 }, 'concurrency'],
      [{ concurrency: -1 }, 'concurrency'],
      [{ concurrency: Number.NaN }, 'concurrency'],
      [{ concurrency: 2.5 }, 'concurrency'],
      [{ concurrency: '5' }, 'concurrency'],
      [{}, 'concurrency'],
      [{ concurrency: 5, maxQueue: -1 }, 'maxQueue'],
      [{ concurrency: 5, queueTimeout: 0 }, 'queueTimeout'],
      [{ concurrency: 5, leaseTtl: Number.NaN }, 'leaseTtl'],
      [{ concurrency: 5, key: '' }, 'key'],
      [{ concurrency: 5, redis: 'http://nope' }, 'redis'],
    ];
    for (const [o, option] of cases) {
      expect(() => new ConcurrencyLimiter(o as never), JSON.stringify(o)).toThrow(
        expect.objectContaining({ option }),
      );
    }
    expect(() => new ConcurrencyLimiter(undefined as never)).toThrow(ValidationError);
  });
});

describe('limit()', () => {
  it('function form keeps arguments and `this`, and is bounded', async () => {
    const l = new ConcurrencyLimiter({ concurrency: 2 });
    let now = 0;
    let max = 0;
    const work = limit(l, async (x: number) => {
      now++;
      max = Math.max(max, now);
      await sleep(10);
      now--;
      return x * 2;
    });
    expect(await Promise.all([1, 2, 3, 4, 5].map((x) => work(x)))).toEqual([2, 4, 6, 8, 10]);
    expect(max).toBe(2);
  });

  it('rejects something that is not a limiter', () => {
    expect(() => limit({} as never)).toThrow(ValidationError);
  });
});

describe('local accounting with weights and cancellations', () => {
  it('cancelled waiters free their queue places at once; counts return to zero', async () => {
    const l = new ConcurrencyLimiter({ concurrency: 3, maxQueue: 4 });
    let release = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const holder = l.run(() => gate, { weight: 2 });
    const ac = new AbortController();
    // weight 2 gathers 1 slot and waits for the other; the next two wait entirely.
    const waiting = [
      l.run(() => 'w2', { weight: 2, signal: ac.signal }),
      l.run(() => 'w3', { weight: 3, signal: ac.signal }),
    ];
    await sleep(10);
    expect(l.activeCount).toBe(1);
    expect(l.pendingCount).toBe(2);
    expect(l.activeWeight).toBe(3);
    // 2 + 2 + 3 = 7 = concurrency + maxQueue: full.
    await expect(l.run(() => 1)).rejects.toBeInstanceOf(LimitExceededError);
    ac.abort();
    await Promise.allSettled(waiting);
    expect(l.pendingCount).toBe(0);
    // The cancelled calls' places are free again although their p-limit jobs are still queued.
    const later = [l.run(() => 'a'), l.run(() => 'b', { weight: 3 })];
    release();
    await holder;
    expect(await Promise.all(later)).toEqual(['a', 'b']);
    await sleep(1); // p-limit frees a slot a tick after the call settles
    expect(l.activeCount).toBe(0);
    expect(l.pendingCount).toBe(0);
    expect(l.activeWeight).toBe(0);
  });
});
