/**
 * API contract of resilience, written from the issue text only: `circuit` (decorator and
 * function), `ConcurrencyLimiter`, `@limit`, `RateLimiter`, `retry`, `timeout` and the typed
 * errors, embedded and on Redis where the issue shows the `redis` option.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import {
  AzscaleError,
  CircuitOpenError,
  ConcurrencyLimiter,
  LimitExceededError,
  RateLimiter,
  TimeoutError,
  ValidationError,
  circuit,
  limit,
  retry,
  timeout,
} from '../../src/index.js';
import * as resilience from '../../src/resilience/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const toClose: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((c) => c.close()));
});
const unique = (name: string) => uniquePrefix(name).replace(/[^A-Za-z0-9-]/g, '');

describe('resilience API contract: exports', () => {
  it('is exported from azscale and azscale/resilience', () => {
    expect(resilience.circuit).toBe(root.circuit);
    expect(resilience.ConcurrencyLimiter).toBe(root.ConcurrencyLimiter);
    expect(resilience.limit).toBe(root.limit);
    expect(resilience.RateLimiter).toBe(root.RateLimiter);
    expect(resilience.retry).toBe(root.retry);
    expect(resilience.timeout).toBe(root.timeout);
    // The errors the issue names come from the subpath too (same classes as the root's).
    expect(resilience.CircuitOpenError).toBe(CircuitOpenError);
    expect(resilience.LimitExceededError).toBe(LimitExceededError);
    expect(resilience.TimeoutError).toBe(TimeoutError);
    expect(resilience.ValidationError).toBe(ValidationError);
  });
});

describe('resilience API contract: circuit', () => {
  it('@circuit({ failureThreshold: 5, recoveryTimeout: 60 }) opens after 5 consecutive failures', async () => {
    class Client {
      calls = 0;
      healthy = false;
      @circuit({ failureThreshold: 5, recoveryTimeout: 60 })
      async callExternalService(x: number): Promise<number> {
        this.calls++;
        if (!this.healthy) throw new Error('down');
        return x * 2;
      }
    }
    const c = new Client();
    for (let i = 0; i < 5; i++) {
      await expect(c.callExternalService(1)).rejects.toThrow('down');
    }
    expect(c.calls).toBe(5);
    c.healthy = true;
    await expect(c.callExternalService(1)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(c.calls).toBe(5);
    // One breaker per decorated method, not per instance.
    const other = new Client();
    other.healthy = true;
    await expect(other.callExternalService(1)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(other.calls).toBe(0);
  });

  it('@circuit preserves `this` and arguments; successes reset the consecutive count', async () => {
    class Client {
      constructor(readonly base: number) {}
      fail = false;
      @circuit({ failureThreshold: 3, recoveryTimeout: 60, name: unique('keep-this') })
      async add(x: number): Promise<number> {
        if (this.fail) throw new Error('no');
        return this.base + x;
      }
    }
    const c = new Client(10);
    expect(await c.add(5)).toBe(15);
    c.fail = true;
    await expect(c.add(1)).rejects.toThrow('no');
    await expect(c.add(1)).rejects.toThrow('no');
    c.fail = false;
    expect(await c.add(1)).toBe(11);
    c.fail = true;
    await expect(c.add(1)).rejects.toThrow('no');
    await expect(c.add(1)).rejects.toThrow('no');
    // Not three in a row yet (a success came in between): still closed.
    c.fail = false;
    expect(await c.add(2)).toBe(12);
  });

  it('circuit(fn, { failureThreshold, recoveryTimeout }): half-open after recoveryTimeout seconds, a success closes', async () => {
    let healthy = false;
    let calls = 0;
    const guarded = circuit(
      async (x: number) => {
        calls++;
        if (!healthy) throw new Error('boom');
        return x + 1;
      },
      { failureThreshold: 2, recoveryTimeout: 0.2, name: unique('recovery') },
    );
    await expect(guarded(1)).rejects.toThrow('boom');
    await expect(guarded(1)).rejects.toThrow('boom');
    await expect(guarded(1)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
    await sleep(300);
    healthy = true;
    expect(await guarded(41)).toBe(42);
    expect(calls).toBe(3);
    expect(await guarded(1)).toBe(2);
  });

  it('a failed half-open trial opens the breaker again', async () => {
    let calls = 0;
    const guarded = circuit(
      async () => {
        calls++;
        throw new Error('still down');
      },
      { failureThreshold: 1, recoveryTimeout: 0.15, name: unique('reopen') },
    );
    await expect(guarded()).rejects.toThrow('still down');
    await expect(guarded()).rejects.toBeInstanceOf(CircuitOpenError);
    await sleep(250);
    await expect(guarded()).rejects.toThrow('still down');
    await expect(guarded()).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
  });

  it('fallback is called with the arguments when open; isFailure filters what counts', async () => {
    let calls = 0;
    class HttpError extends Error {
      constructor(readonly status: number) {
        super(`status ${status}`);
      }
    }
    const guarded = circuit(
      async (status: number) => {
        calls++;
        throw new HttpError(status);
      },
      {
        failureThreshold: 2,
        recoveryTimeout: 60,
        name: unique('fallback'),
        fallback: (status: number) => `fallback ${status}`,
        isFailure: (e) => e instanceof HttpError && e.status >= 500,
      },
    );
    // 4xx: not failures, passed through, never open the breaker.
    for (let i = 0; i < 5; i++) await expect(guarded(400)).rejects.toThrow('status 400');
    expect(calls).toBe(5);
    await expect(guarded(503)).rejects.toThrow('status 503');
    await expect(guarded(503)).rejects.toThrow('status 503');
    expect(await guarded(503)).toBe('fallback 503');
    expect(await guarded(400)).toBe('fallback 400');
    expect(calls).toBe(7);
  });

  it('breakers are kept by name: two circuit() with one name share one breaker', async () => {
    const name = unique('shared-name');
    const a = circuit(
      async () => {
        throw new Error('a fails');
      },
      { failureThreshold: 2, recoveryTimeout: 60, name },
    );
    let bCalls = 0;
    const b = circuit(
      async () => {
        bCalls++;
        return 'b';
      },
      { failureThreshold: 2, recoveryTimeout: 60, name },
    );
    await expect(a()).rejects.toThrow('a fails');
    await expect(a()).rejects.toThrow('a fails');
    await expect(b()).rejects.toBeInstanceOf(CircuitOpenError);
    expect(bCalls).toBe(0);
  });

  it('events onOpen / onHalfOpen / onClose return disposers; state is readable and exportable', async () => {
    let healthy = false;
    const guarded = circuit(
      async () => {
        if (!healthy) throw new Error('x');
        return 'ok';
      },
      { failureThreshold: 1, recoveryTimeout: 0.15, name: unique('events') },
    );
    const seen: string[] = [];
    const d1 = guarded.onOpen(() => seen.push('open'));
    const d2 = guarded.onHalfOpen(() => seen.push('halfOpen'));
    const d3 = guarded.onClose(() => seen.push('close'));
    expect(guarded.state).toBe('closed');
    await expect(guarded()).rejects.toThrow('x');
    expect(guarded.state).toBe('open');
    expect(JSON.parse(JSON.stringify(guarded.exportState())).state).toBe('open');
    await sleep(250);
    healthy = true;
    expect(await guarded()).toBe('ok');
    expect(guarded.state).toBe('closed');
    expect(seen).toEqual(['open', 'halfOpen', 'close']);
    d1();
    d2.dispose();
    d3();
    healthy = false;
    await expect(guarded()).rejects.toThrow('x');
    expect(seen).toEqual(['open', 'halfOpen', 'close']);
  });

  it('bad input: typed errors', () => {
    expect(() => circuit(async () => 1, { failureThreshold: 0 })).toThrow(ValidationError);
    expect(() => circuit(async () => 1, { failureThreshold: Number.NaN })).toThrow(ValidationError);
    expect(() => circuit(async () => 1, { recoveryTimeout: -1 })).toThrow(ValidationError);
    expect(() => circuit(42 as unknown as () => void, {})).toThrow(ValidationError);
  });

  it('shared state with redis: an open on one instance is seen open by another within a second', async () => {
    const name = unique('fleet');
    const make = (fn: () => Promise<string>) => {
      // Two breakers with the same explicit name (a shared breaker needs one since the hardening release),
      // each its own instance and connection: they stand for two processes sharing the state.
      const breaker = new resilience.CircuitBreaker({
        name,
        failureThreshold: 2,
        recoveryTimeout: 60,
        redis: servers().redisUrl,
      });
      return Object.assign(() => breaker.execute(fn), { breaker });
    };
    const a = make(async () => {
      throw new Error('down');
    });
    let bCalls = 0;
    const b = make(async () => {
      bCalls++;
      return 'fine';
    });
    toClose.push(a.breaker, b.breaker);
    expect(await b()).toBe('fine');
    await expect(a()).rejects.toThrow('down');
    await expect(a()).rejects.toThrow('down');
    const deadline = Date.now() + 1000;
    let refused = false;
    while (!refused && Date.now() < deadline) {
      await sleep(50);
      try {
        await b();
      } catch (e) {
        refused = e instanceof CircuitOpenError;
      }
    }
    expect(refused).toBe(true);
    expect(bCalls).toBeGreaterThanOrEqual(1);
  });
});

describe('resilience API contract: ConcurrencyLimiter', () => {
  it('run() never exceeds concurrency; activeCount and pendingCount', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 3 });
    toClose.push(limiter);
    let inFlight = 0;
    let peak = 0;
    const task = async (i: number) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep(30);
      inFlight--;
      return i;
    };
    const all = Promise.all(Array.from({ length: 12 }, (_, i) => limiter.run(() => task(i))));
    await sleep(10);
    expect(limiter.activeCount).toBe(3);
    expect(limiter.pendingCount).toBe(9);
    expect(await all).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(peak).toBe(3);
    expect(limiter.activeCount).toBe(0);
    expect(limiter.pendingCount).toBe(0);
  });

  it('run(fn, { weight }) takes weight slots', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 3 });
    toClose.push(limiter);
    let used = 0;
    let peak = 0;
    const job = (w: number) =>
      limiter.run(
        async () => {
          used += w;
          peak = Math.max(peak, used);
          await sleep(20);
          used -= w;
        },
        { weight: w },
      );
    await Promise.all([job(2), job(2), job(1), job(3), job(1), job(2)]);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThanOrEqual(2);
    await expect(limiter.run(async () => 1, { weight: 4 })).rejects.toBeInstanceOf(ValidationError);
  });

  it('run(fn, { signal }): an abort while waiting rejects and frees the queue place', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1 });
    toClose.push(limiter);
    let release!: () => void;
    const holder = limiter.run(() => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    let ran = false;
    const waiting = limiter.run(
      async () => {
        ran = true;
      },
      { signal: ac.signal },
    );
    await sleep(10);
    expect(limiter.pendingCount).toBe(1);
    ac.abort();
    await expect(waiting).rejects.toBeInstanceOf(AzscaleError);
    expect(limiter.pendingCount).toBe(0);
    release();
    await holder;
    expect(ran).toBe(false);
    expect(await limiter.run(async () => 'next')).toBe('next');
  });

  it('maxQueue: beyond it LimitExceededError; queueTimeout bounds the wait (not the run)', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 1, maxQueue: 1, queueTimeout: 0.1 });
    toClose.push(limiter);
    // The running call outlasts the queue timeout by far, so the queued call's rejection can only
    // come from queueTimeout (without it, 'queued' would run and resolve once 'long' ends).
    const long = limiter.run(() => sleep(1500).then(() => 'long'));
    const queued = limiter.run(async () => 'queued');
    await expect(limiter.run(async () => 'overflow')).rejects.toBeInstanceOf(LimitExceededError);
    const t0 = Date.now();
    await expect(queued).rejects.toBeInstanceOf(AzscaleError);
    expect(Date.now() - t0).toBeLessThan(1200);
    // The running call itself is not cut by queueTimeout.
    expect(await long).toBe('long');
  });

  it('@limit(limiter) decorates a method', async () => {
    const limiter = new ConcurrencyLimiter({ concurrency: 2 });
    toClose.push(limiter);
    let inFlight = 0;
    let peak = 0;
    class Agent {
      constructor(readonly tag: string) {}
      @limit(limiter)
      async invoke(x: number): Promise<string> {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(20);
        inFlight--;
        return `${this.tag}${x}`;
      }
    }
    const a = new Agent('a');
    const out = await Promise.all(Array.from({ length: 7 }, (_, i) => a.invoke(i)));
    expect(out).toEqual(Array.from({ length: 7 }, (_, i) => `a${i}`));
    expect(peak).toBe(2);
  });

  it('bad input: typed errors', async () => {
    for (const concurrency of [0, -1, Number.NaN, 1.5, '3']) {
      expect(() => new ConcurrencyLimiter({ concurrency: concurrency as number })).toThrow(
        ValidationError,
      );
    }
    const limiter = new ConcurrencyLimiter({ concurrency: 2 });
    toClose.push(limiter);
    await expect(limiter.run('nope' as unknown as () => void)).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(limiter.run(async () => 1, { weight: Number.NaN })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(limiter.run(async () => 1, { weight: 0 })).rejects.toBeInstanceOf(ValidationError);
  });

  it('with redis: the limit holds across limiters sharing the key', async () => {
    const key = `llm:${unique('openai')}`;
    const limiters = [0, 1, 2].map(
      () => new ConcurrencyLimiter({ concurrency: 3, redis: servers().redisUrl, key, leaseTtl: 5 }),
    );
    toClose.push(...limiters);
    let inFlight = 0;
    let peak = 0;
    const jobs = Array.from({ length: 24 }, (_, i) =>
      (limiters[i % 3] as ConcurrencyLimiter).run(async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep(25);
        inFlight--;
        return i;
      }),
    );
    expect((await Promise.all(jobs)).length).toBe(24);
    expect(peak).toBe(3);
  });

  it('with the Redis Cluster too', async () => {
    const key = `llm:${unique('cl')}`;
    const limiters = [0, 1].map(
      () =>
        new ConcurrencyLimiter({ concurrency: 2, redis: { nodes: servers().clusterNodes }, key }),
    );
    toClose.push(...limiters);
    let inFlight = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (limiters[i % 2] as ConcurrencyLimiter).run(async () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await sleep(20);
          inFlight--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });
});

describe('resilience API contract: RateLimiter', () => {
  it('requestsPerMinute: beyond the budget acquire throws LimitExceededError with retryAfter', async () => {
    const rate = new RateLimiter({ key: unique('rpm'), requestsPerMinute: 3 });
    toClose.push(rate);
    await rate.acquire();
    await rate.acquire();
    await rate.acquire();
    const err = await rate.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    const retryAfter = (err as LimitExceededError).retryAfter as number;
    expect(typeof retryAfter).toBe('number');
    expect(retryAfter).toBeGreaterThan(5);
    expect(retryAfter).toBeLessThanOrEqual(20.5);
  });

  it('acquire({ tokens }) spends the token budget; waits when the budget frees soon', async () => {
    const rate = new RateLimiter({ key: unique('tpm'), tokensPerMinute: 6000 });
    toClose.push(rate);
    await rate.acquire({ tokens: 1200 });
    await rate.acquire({ tokens: 4800 });
    // 60 tokens free up every 0.6 s: this waits about 0.6 s instead of failing.
    const t0 = Date.now();
    await rate.acquire({ tokens: 60 });
    expect(Date.now() - t0).toBeGreaterThan(300);
    const err = await rate.acquire({ tokens: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).retryAfter).toBeGreaterThan(20);
    await expect(rate.acquire({ tokens: 6001 })).rejects.toBeInstanceOf(ValidationError);
    await expect(rate.acquire({ tokens: Number.NaN })).rejects.toBeInstanceOf(ValidationError);
  });

  it('penalize(seconds) pauses the key', async () => {
    const rate = new RateLimiter({ key: unique('pen'), requestsPerMinute: 1000 });
    toClose.push(rate);
    await rate.acquire();
    rate.penalize(30);
    const err = await rate.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).retryAfter).toBeGreaterThan(25);
    expect((err as LimitExceededError).retryAfter).toBeLessThanOrEqual(30);
  });

  it('with redis: the budget and penalize hold for every instance', async () => {
    const key = unique('fleet-rate');
    const a = new RateLimiter({ redis: servers().redisUrl, key, requestsPerMinute: 2 });
    const b = new RateLimiter({ redis: servers().redisUrl, key, requestsPerMinute: 2 });
    toClose.push(a, b);
    await a.acquire();
    await b.acquire();
    await expect(a.acquire()).rejects.toBeInstanceOf(LimitExceededError);
    await expect(b.acquire()).rejects.toBeInstanceOf(LimitExceededError);

    const key2 = unique('fleet-pen');
    const c = new RateLimiter({ redis: servers().redisUrl, key: key2, requestsPerMinute: 1000 });
    const d = new RateLimiter({ redis: servers().redisUrl, key: key2, requestsPerMinute: 1000 });
    toClose.push(c, d);
    await d.acquire();
    await c.penalize(20);
    const err = await d.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).retryAfter).toBeGreaterThan(15);
  });

  it('bad input: typed errors', () => {
    expect(() => new RateLimiter({ key: 'k', requestsPerMinute: 0 })).toThrow(ValidationError);
    expect(() => new RateLimiter({ key: 'k', requestsPerMinute: Number.NaN })).toThrow(
      ValidationError,
    );
    expect(() => new RateLimiter({ key: 'k', tokensPerMinute: -5 })).toThrow(ValidationError);
  });
});

describe('resilience API contract: retry and timeout', () => {
  it('retry(fn, { attempts, backoff }) retries until success', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new Error(`fail ${calls}`);
        return 'ok';
      },
      { attempts: 3, backoff: 0.01 },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
  });

  it('retry throws the last error when every attempt failed', async () => {
    let calls = 0;
    await expect(
      retry(
        async () => {
          calls++;
          throw new Error(`fail ${calls}`);
        },
        { attempts: 2, backoff: 'constant' },
      ),
    ).rejects.toThrow('fail 2');
    expect(calls).toBe(2);
  });

  it('retry as a reusable wrapper keeps arguments', async () => {
    let calls = 0;
    const flaky = retry(
      async (a: number, b: number) => {
        calls++;
        if (calls % 2 === 1) throw new Error('odd');
        return a + b;
      },
      { attempts: 2, backoff: { initialDelay: 0.01 } },
    );
    expect(await flaky(1, 2)).toBe(3);
    expect(await flaky(3, 4)).toBe(7);
    expect(calls).toBe(4);
  });

  it('timeout(fn, seconds) rejects with TimeoutError past the deadline', async () => {
    const t0 = Date.now();
    await expect(timeout(() => sleep(2000).then(() => 'late'), 0.05)).rejects.toBeInstanceOf(
      TimeoutError,
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await timeout(async () => 'fast', 1)).toBe('fast');
  });

  it('bad input: typed errors', () => {
    expect(() => retry(async () => 1, { attempts: 0 })).toThrow(ValidationError);
    expect(() => retry('x' as unknown as () => void, { attempts: 2 })).toThrow(ValidationError);
    expect(() => timeout(async () => 1, 0)).toThrow(ValidationError);
    expect(() => timeout(async () => 1, Number.NaN)).toThrow(ValidationError);
  });
});
