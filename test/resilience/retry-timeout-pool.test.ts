import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  CancelledError,
  TimeoutError,
  ValidationError,
  isClosedError,
  isLimitExceededError,
  isTimeoutError,
} from '../../src/core/errors.js';
import {
  HttpPool,
  HttpPoolRegistry,
  createHttpPool,
  defaultHttpPools,
  retry,
  sharedHttpPool,
  timeout,
  withTimeout,
} from '../../src/resilience/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('retry', () => {
  it('awaited directly: retries until success, `attempts` in total', async () => {
    let n = 0;
    const v = await retry(
      async () => {
        if (++n < 3) throw new Error(`fail ${n}`);
        return 'ok';
      },
      { attempts: 3, backoff: 0.001 },
    );
    expect(v).toBe('ok');
    expect(n).toBe(3);
  });

  it('throws the last error when every attempt failed', async () => {
    let n = 0;
    await expect(
      retry(
        async () => {
          throw new Error(`fail ${++n}`);
        },
        { attempts: 4, backoff: { type: 'constant', initialDelay: 0.001 } },
      ),
    ).rejects.toThrow('fail 4');
    expect(n).toBe(4);
  });

  it('as a wrapper: passes arguments, runs on every call', async () => {
    const seen: number[] = [];
    let fail = true;
    const double = retry(
      async (x: number) => {
        seen.push(x);
        if (fail) {
          fail = false;
          throw new Error('once');
        }
        return x * 2;
      },
      { attempts: 2, backoff: { initialDelay: 0.001, jitter: false } },
    );
    expect(await double(4)).toBe(8);
    expect(await double(5)).toBe(10);
    expect(seen).toEqual([4, 4, 5]);
  });

  it('isRetryable stops at once on other errors; onRetry reports attempts and delays', async () => {
    let n = 0;
    const infos: { attempt: number; delay: number }[] = [];
    await expect(
      retry(
        async () => {
          n++;
          throw new Error(n === 1 ? 'transient' : 'fatal');
        },
        {
          attempts: 5,
          backoff: 0.002,
          isRetryable: (e) => (e as Error).message === 'transient',
          onRetry: ({ attempt, delay }) => infos.push({ attempt, delay }),
        },
      ),
    ).rejects.toThrow('fatal');
    expect(n).toBe(2);
    expect(infos).toEqual([{ attempt: 1, delay: 0.002 }]);
  });

  it('an abort signal ends the retries', async () => {
    const ac = new AbortController();
    let n = 0;
    const p = retry(
      async () => {
        n++;
        throw new Error('x');
      },
      { attempts: 100, backoff: 0.05, signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 30);
    const t0 = Date.now();
    // cockatiel ends with the last error when aborted between attempts.
    await expect(p).rejects.toThrow('x');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(n).toBeLessThan(5);
    // Aborted before the first attempt: nothing runs.
    const before = n;
    await expect(retry(async () => n++, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      CancelledError,
    );
    expect(n).toBe(before);
  });

  it('bad input', () => {
    expect(() => retry(5 as never)).toThrow(ValidationError);
    expect(() => retry(async () => 1, { attempts: 0 })).toThrow(
      expect.objectContaining({ option: 'attempts' }),
    );
    expect(() => retry(async () => 1, { attempts: Number.NaN })).toThrow(ValidationError);
    expect(() => retry(async () => 1, { backoff: -1 })).toThrow(ValidationError);
    expect(() => retry(async () => 1, { backoff: { type: 'linear' as never } })).toThrow(
      ValidationError,
    );
  });
});

describe('withTimeout / timeout', () => {
  it('rejects with TimeoutError past the deadline and aborts the signal it passed', async () => {
    let aborted = false;
    const t0 = Date.now();
    const e = await withTimeout(async (signal: AbortSignal) => {
      signal.addEventListener('abort', () => {
        aborted = true;
      });
      await sleep(3000);
      return 'late';
    }, 0.05).then(
      () => undefined,
      (x: unknown) => x,
    );
    // Far below the 3 s the function takes, with room for a loaded machine's late timers.
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(isTimeoutError(e)).toBe(true);
    expect(aborted).toBe(true);
  });

  it('returns the value when in time; the wrapper form takes arguments', async () => {
    await expect(timeout(async () => 7, 1)).resolves.toBe(7);
    const add = withTimeout(async (a: number, b: number, _signal: AbortSignal) => a + b, 1);
    await expect(add(2, 3)).resolves.toBe(5);
    await expect(withTimeout(async () => Promise.reject(new Error('own')), 1)).rejects.toThrow(
      'own',
    );
  });

  it('bad input', () => {
    expect(() => withTimeout(async () => 1, 0)).toThrow(
      expect.objectContaining({ option: 'seconds' }),
    );
    expect(() => withTimeout(async () => 1, Number.NaN)).toThrow(ValidationError);
    expect(() => timeout('x' as never, 1)).toThrow(ValidationError);
  });
});

describe('HttpPool', () => {
  it('bounds connections per origin and reuses them', async () => {
    let open = 0;
    let maxOpen = 0;
    const sockets = new Set<unknown>();
    const server = createServer((_req, res) => {
      setTimeout(() => res.end('ok'), 20);
    });
    server.on('connection', (s) => {
      sockets.add(s);
      open++;
      maxOpen = Math.max(maxOpen, open);
      s.on('close', () => open--);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const pool = createHttpPool({ maxConnections: 3 });
    try {
      const bodies = await Promise.all(
        Array.from({ length: 20 }, () => pool.fetch(url).then((r) => r.text())),
      );
      expect(bodies.every((b) => b === 'ok')).toBe(true);
      expect(maxOpen).toBeLessThanOrEqual(3);
      expect(sockets.size).toBeLessThanOrEqual(3);
      const stats = Object.values(pool.stats());
      expect(stats[0]?.connected).toBeLessThanOrEqual(3);
    } finally {
      await pool.close();
      server.close();
    }
    await expect(pool.fetch(url)).rejects.toThrow(/closed/);
  });

  it('sharedHttpPool returns one pool per name', async () => {
    const a = sharedHttpPool();
    expect(sharedHttpPool()).toBe(a);
    const b = sharedHttpPool({ name: 'llm', maxConnections: 10 });
    expect(b).not.toBe(a);
    expect(b.maxConnections).toBe(10);
    expect(a).toBeInstanceOf(HttpPool);
    await a.close();
    await b.close();
    expect(sharedHttpPool()).not.toBe(a);
    await sharedHttpPool().close();
  });

  it('sharedHttpPool is the default registry; a registry closes every pool it made', async () => {
    const a = sharedHttpPool({ name: 'registry-default' });
    expect(defaultHttpPools.get({ name: 'registry-default' })).toBe(a);
    expect(defaultHttpPools.has('registry-default')).toBe(true);
    await a.close();
    expect(defaultHttpPools.has('registry-default')).toBe(false);

    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const pools = new HttpPoolRegistry({ maxPools: 2 });
    try {
      const x = pools.get({ name: 'x', maxConnections: 2 });
      const y = pools.get({ name: 'y' });
      expect(pools.get({ name: 'x' })).toBe(x);
      expect(pools.names().sort()).toEqual(['x', 'y']);
      expect(await (await x.fetch(url)).text()).toBe('ok');
      const third = (() => {
        try {
          pools.get({ name: 'z' });
        } catch (e) {
          return e;
        }
      })();
      expect(isLimitExceededError(third)).toBe(true);
      // A pool closed on its own frees its name.
      expect(await pools.delete('y')).toBe(true);
      expect(await pools.delete('y')).toBe(false);
      await y.fetch(url).then(
        () => expect.unreachable('a closed pool fetched'),
        (e) => expect(isClosedError(e)).toBe(true),
      );
      const z = pools.get({ name: 'z' });
      await pools.close();
      expect(pools.size).toBe(0);
      for (const p of [x, z]) await expect(p.fetch(url)).rejects.toSatisfy(isClosedError);
      // Still usable after close: a new pool under an old name.
      const again = pools.get({ name: 'x' });
      expect(again).not.toBe(x);
      expect(await (await again.fetch(url)).text()).toBe('ok');
    } finally {
      await pools.close();
      server.close();
    }
    expect(() => new HttpPoolRegistry({ maxPools: 0 })).toThrow(
      expect.objectContaining({ option: 'maxPools' }),
    );
    expect(() => pools.get({ name: '' })).toThrow(ValidationError);
  });

  it('bad input', () => {
    expect(() => createHttpPool({ maxConnections: 0 })).toThrow(
      expect.objectContaining({ option: 'maxConnections' }),
    );
    expect(() => createHttpPool({ keepAliveTimeout: -1 })).toThrow(ValidationError);
  });
});
