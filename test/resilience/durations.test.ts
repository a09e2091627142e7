/**
 * Defect 4 of issue 13 in resilience: durations above 2^31-1 ms (24.8 days) used to fire after
 * 1 ms. Each duration option either works at any size it accepts (timers are chained) or is
 * refused with a ValidationError naming the option and its maximum. Nothing fires early.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { resolveRedis } from '../../src/core/connection.js';
import { isValidationError } from '../../src/core/errors.js';
import {
  CircuitBreaker,
  ConcurrencyLimiter,
  HttpPool,
  RateLimiter,
  RedisSemaphoreStore,
  retry,
  withTimeout,
} from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const DAY = 86_400;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const settledWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([
    p.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((r) => setTimeout(() => r('pending'), ms)),
  ]);

describe('withTimeout past one Node timer', () => {
  it.each(['aggressive', 'cooperative'] as const)(
    'a 30-day timeout (%s) does not fire early and passes a live signal',
    async (strategy) => {
      const slow = withTimeout(
        async (signal: AbortSignal) => {
          await new Promise((r) => setTimeout(r, 100));
          return signal.aborted ? 'aborted' : 'done';
        },
        30 * DAY,
        { strategy },
      );
      expect(await slow()).toBe('done');
    },
  );

  it('rejects durations above 10 years, naming the option', () => {
    const e = thrown(() => withTimeout(async () => 1, 11 * 365 * DAY));
    expect(isValidationError(e)).toBe(true);
    expect((e as { option?: string }).option).toBe('seconds');
  });
});

describe.each([
  { name: 'memory', redis: () => undefined },
  { name: 'redis', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
])('ConcurrencyLimiter queueTimeout of 30 days: $name', ({ redis }) => {
  const made: ConcurrencyLimiter[] = [];
  afterAll(() => Promise.all(made.map((l) => l.close())));

  it('a waiting call is not timed out early and runs when the slot frees', async () => {
    const limiter = new ConcurrencyLimiter({
      concurrency: 1,
      redis: redis(),
      key: uniquePrefix('lim'),
      queueTimeout: 30 * DAY,
      pollInterval: 0.01,
    } as never);
    made.push(limiter);
    let release = () => {};
    const first = limiter.run(() => new Promise<void>((r) => (release = r)));
    await new Promise((r) => setTimeout(r, 50));
    const second = limiter.run(async () => 'second');
    expect(await settledWithin(second, 300)).toBe('pending');
    release();
    await first;
    expect(await second).toBe('second');
  });
});

describe('ConcurrencyLimiter leaseTtl of 100 days (Redis)', () => {
  it('renews at a sane interval, not every millisecond', async () => {
    const conn = resolveRedis(servers().redisUrl);
    if (!conn) throw new Error('no redis');
    const inner = new RedisSemaphoreStore(conn, uniquePrefix('lease'));
    let renewals = 0;
    const store = Object.assign(Object.create(inner) as RedisSemaphoreStore, {
      renew: (key: string, leaseId: string, ttlMs: number) => {
        renewals++;
        return inner.renew(key, leaseId, ttlMs);
      },
    });
    const limiter = new ConcurrencyLimiter({ concurrency: 2, store, leaseTtl: 100 * DAY });
    try {
      await limiter.run(() => new Promise((r) => setTimeout(r, 300)));
      expect(renewals).toBe(0);
    } finally {
      await limiter.close();
      await inner.close();
    }
  });
});

describe('duration options past what a timer can hold are refused, naming the option', () => {
  it.each([
    ['pollInterval', () => new ConcurrencyLimiter({ concurrency: 1, pollInterval: 61 })],
    ['leaseTtl', () => new ConcurrencyLimiter({ concurrency: 1, leaseTtl: Number.NaN })],
    ['queueTimeout', () => new ConcurrencyLimiter({ concurrency: 1, queueTimeout: -1 })],
    ['syncInterval', () => new CircuitBreaker({ syncInterval: 30 * DAY })],
    ['recoveryTimeout', () => new CircuitBreaker({ recoveryTimeout: 11 * 365 * DAY })],
    ['trialTimeout', () => new CircuitBreaker({ trialTimeout: Number.POSITIVE_INFINITY })],
    ['backoff', () => retry(async () => 1, { backoff: 30 * DAY })],
    ['backoff.initialDelay', () => retry(async () => 1, { backoff: { initialDelay: 30 * DAY } })],
    ['backoff.maxDelay', () => retry(async () => 1, { backoff: { maxDelay: 30 * DAY } })],
    ['headersTimeout', () => new HttpPool({ headersTimeout: 30 * DAY })],
    ['keepAliveTimeout', () => new HttpPool({ keepAliveTimeout: -5 })],
    ['maxWait', () => new RateLimiter({ requestsPerMinute: 1, maxWait: 11 * 365 * DAY })],
  ] as const)('%s', (option, make) => {
    const e = thrown(make);
    expect(isValidationError(e), String(e)).toBe(true);
    expect((e as { option?: string }).option).toBe(option);
    expect((e as Error).message).toMatch(/<=/);
  });
});

describe('a recovery timeout of 30 days holds the breaker open', () => {
  it('does not let a trial through early', async () => {
    const b = new CircuitBreaker({ failureThreshold: 1, recoveryTimeout: 30 * DAY });
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    expect(b.state).toBe('open');
    await b.close();
  });
});
