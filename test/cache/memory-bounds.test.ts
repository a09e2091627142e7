/**
 * Defects 8 and 12 (cache parts): every internal map and cache is bounded.
 * - The `stamped` map (L1 fill ordering) stays small under steady concurrency.
 * - L1 is bounded by bytes (`local.maxBytes`, default 64 MiB) as well as by entries.
 * - `cached` keeps no raw argument text of unbounded length.
 */
import net from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache, cached } from '../../src/cache/index.js';
import { servers, uniquePrefix } from '../harness/env.js';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** The stamp map's size (the L1 race guard's, see src/cache/local-tier.ts). */
function stampCount(c: DistributedCache): number {
  return c._stampCount;
}

/** A TCP proxy in front of Redis that delays every reply chunk by `ms` (order kept). */
async function latencyProxy(
  target: URL,
  ms: number,
): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const up = net.connect(Number(target.port), target.hostname);
    sockets.add(client).add(up);
    client.on('data', (d) => up.write(d));
    up.on('data', (d) => {
      setTimeout(() => {
        if (!client.destroyed) client.write(d);
      }, ms);
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => r());
      }),
  };
}

describe.each(['redis', 'cluster'] as const)('stamp map under steady concurrency (%s)', (mode) => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('20,000 writes with reads always in flight and a 100-entry L1: the map stays small', async () => {
    const s = servers();
    let redis: string | { nodes: { host: string; port: number }[] };
    if (mode === 'cluster') {
      redis = { nodes: s.clusterNodes };
    } else {
      // 2 ms of reply latency (as across a network), so that replies do not all land in one
      // socket read and reads overlap as they do in production.
      const proxy = await latencyProxy(new URL(s.redisUrl), 2);
      closers.push(proxy.close);
      redis = proxy.url;
    }
    const cache = new DistributedCache({
      redis,
      prefix: uniquePrefix('stamps'),
      local: { max: 100, ttl: 60 },
      backendTimeout: 5,
    });
    closers.push(() => cache.close());
    await cache.ready();
    const WRITES = 20_000;
    const WORKERS = 16;
    let next = 0;
    let peak = 0;
    // A reader that starts a read every millisecond without waiting for the previous one, so
    // that some read is in flight at every moment, as in a busy service.
    const reads = new Set<Promise<unknown>>();
    let r = 0;
    const reader = setInterval(() => {
      r++;
      const p = cache.getBatch([`r${(r * 7) % 5000}`, `r${(r * 13) % 5000}`]);
      reads.add(p);
      p.finally(() => reads.delete(p)).catch(() => undefined);
    }, 1);
    const worker = async () => {
      while (next < WRITES) {
        const i = next++;
        await Promise.all([
          cache.getBatch([`r${(i * 3) % 5000}`, `r${(i * 11) % 5000}`]),
          cache.set(`w${i}`, 'v', 60),
        ]);
        if (i % 50 === 0) peak = Math.max(peak, stampCount(cache));
      }
    };
    try {
      await Promise.all(Array.from({ length: WORKERS }, () => worker()));
    } finally {
      clearInterval(reader);
    }
    await Promise.all(reads);
    peak = Math.max(peak, stampCount(cache));
    expect(peak).toBeLessThanOrEqual(1024);
    // Nothing in flight: empty.
    expect(stampCount(cache)).toBe(0);
    // Correctness kept: a write is read back, through L1 too.
    await cache.set('final', 'x');
    expect(await cache.get('final')).toBe('x');
  }, 120_000);
});

describe('L1 bounded by bytes (local.maxBytes)', () => {
  it('defaults to 64 MiB, in memory-only mode and in front of Redis', async () => {
    const mem = new DistributedCache();
    const l1 = new DistributedCache({ redis: servers().redisUrl, local: true });
    try {
      expect(mem._hot?.maxSize).toBe(64 * 1024 * 1024);
      expect(l1._hot?.maxSize).toBe(64 * 1024 * 1024);
    } finally {
      await mem.close();
      await l1.close();
    }
  });

  it('memory-only: 100 values of 100 KB in a 1 MB tier keep at most 1 MB', async () => {
    const cache = new DistributedCache({ local: { maxBytes: 1_000_000 } });
    try {
      for (let i = 0; i < 100; i++) await cache.set(`k${i}`, `${i}`.padEnd(50_000, 'x'));
      const hot = cache._hot;
      expect(hot?.calculatedSize).toBeLessThanOrEqual(1_000_000);
      expect(hot?.size).toBeLessThan(20);
      // The most recent survive, the oldest went first.
      expect(await cache.get('k99')).toBe('99'.padEnd(50_000, 'x'));
      expect(await cache.get('k0')).toBeNull();
      // A value larger than the whole tier is not kept in it.
      await cache.set('huge', 'y'.repeat(600_000));
      expect(await cache.get('huge')).toBeNull();
    } finally {
      await cache.close();
    }
  });

  it.each(['redis', 'cluster'] as const)(
    'in front of %s: L1 keeps at most maxBytes; values beyond it come from Redis',
    async (mode) => {
      const s = servers();
      const cache = new DistributedCache({
        redis: mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl,
        prefix: uniquePrefix('l1bytes'),
        local: { maxBytes: 1_000_000, ttl: 60 },
      });
      try {
        await cache.ready();
        const big = (i: number) => `${i}`.padEnd(50_000, 'z');
        for (let i = 0; i < 60; i++) await cache.set(`k${i}`, big(i));
        for (let i = 0; i < 60; i++) expect(await cache.get(`k${i}`)).toBe(big(i));
        expect(cache._hot?.calculatedSize).toBeLessThanOrEqual(1_000_000);
        expect(await cache.getBatch(['k0', 'k59'])).toEqual([big(0), big(59)]);
        expect(cache._hot?.calculatedSize).toBeLessThanOrEqual(1_000_000);
        // Larger than the whole L1: served from Redis every time.
        await cache.set('huge', 'h'.repeat(700_000));
        expect(await cache.get('huge')).toBe('h'.repeat(700_000));
        expect(cache._hot?.has('huge')).toBe(false);
      } finally {
        await cache.close();
      }
    },
  );

  it('rejects a bad maxBytes with a ValidationError naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '1mb']) {
      expect(() => new DistributedCache({ local: { maxBytes: bad as number } })).toThrow(
        expect.objectContaining({ code: 'AZS_VALIDATION', option: 'local.maxBytes' }),
      );
    }
  });
});

describe('cached keeps no raw argument text of unbounded length', () => {
  it('400 distinct 250 KB arguments, each hit twice: the heap does not keep them', async () => {
    const cache = new DistributedCache();
    try {
      let calls = 0;
      const f = cached(
        async (doc: string) => {
          calls++;
          return doc.length;
        },
        { cache, name: 'doclen' },
      );
      const before = heapAfterGc();
      for (let i = 0; i < 400; i++) {
        const doc = `${i}:`.padEnd(250_000, 'd');
        expect(await f(doc)).toBe(250_000);
        expect(await f(doc)).toBe(250_000);
        expect(await f(doc)).toBe(250_000);
      }
      expect(calls).toBe(400);
      const grown = heapAfterGc() - before;
      // Kept, the texts alone would be 100 MB.
      expect(grown).toBeLessThan(30 * 1024 * 1024);
    } finally {
      await cache.close();
    }
  }, 60_000);

  it('entries the LRU dropped let go of their text even while the fast path holds them', async () => {
    const cache = new DistributedCache({ local: { max: 5 } });
    try {
      const f = cached(async (n: number) => 'r'.repeat(200_000) + n, { cache, name: 'bigresult' });
      const before = heapAfterGc();
      for (let n = 0; n < 300; n++) {
        await f(n);
        await f(n);
      }
      const grown = heapAfterGc() - before;
      // 300 dead entries of 200 KB would be 60 MB.
      expect(grown).toBeLessThan(20 * 1024 * 1024);
    } finally {
      await cache.close();
    }
  }, 60_000);
});
