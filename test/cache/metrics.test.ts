/** Metrics and events report what the cache did, with the documented names. */
import { describe, expect, it } from 'vitest';
import { DistributedCache, cached } from '../../src/cache/index.js';
import type { Labels, MetricsSink } from '../../src/core/metrics.js';
import { servers, uniquePrefix } from '../harness/env.js';

function recorder() {
  const values = new Map<string, number>();
  const observed = new Map<string, number[]>();
  const id = (n: string, l?: Labels) => (l ? `${n}${JSON.stringify(l)}` : n);
  const sink: MetricsSink = {
    counter: (n, l) => ({ inc: (v = 1) => values.set(id(n, l), (values.get(id(n, l)) ?? 0) + v) }),
    histogram: (n, l) => ({
      observe: (v) => observed.set(id(n, l), [...(observed.get(id(n, l)) ?? []), v]),
    }),
    gauge: () => ({ set() {}, inc() {}, dec() {} }),
  };
  return { sink, n: (name: string, l?: Labels) => values.get(id(name, l)) ?? 0, observed };
}

describe('cache metrics', () => {
  it('counts local and remote hits, misses, sets, loads and single-flight joins', async () => {
    const r = recorder();
    const cache = new DistributedCache({
      redis: servers().redisUrl,
      prefix: uniquePrefix('metrics'),
      local: { ttl: 30 },
      metrics: r.sink,
      // This test counts, it does not time: the 1 s default is shorter than a round trip can
      // take on a loaded machine (it failed that way), and a timeout would count as a miss.
      backendTimeout: 10,
    });
    try {
      await cache.ready();
      expect(await cache.get('a')).toBeNull();
      expect(r.n('cache_misses_total')).toBe(1);
      await cache.set('a', '1');
      expect(r.n('cache_sets_total')).toBe(1);
      await cache.get('a'); // L1 (filled by our own write)
      expect(r.n('cache_hits_total', { tier: 'local' })).toBe(1);
      const other = new DistributedCache({
        redis: servers().redisUrl,
        prefix: cache.prefix,
        backendTimeout: 10,
      });
      await other.set('b', '2');
      await other.close();
      await cache.get('b'); // Redis
      expect(r.n('cache_hits_total', { tier: 'remote' })).toBe(1);
      const slow = async () => {
        await new Promise((res) => setTimeout(res, 30));
        return 'x';
      };
      await Promise.all([
        cache.getOrSet('c', slow),
        cache.getOrSet('c', slow),
        cache.getOrSet('c', slow),
      ]);
      expect(r.n('cache_loads_total')).toBe(1);
      expect(r.n('cache_single_flight_joins_total')).toBe(2);
      expect(r.observed.get('cache_load_seconds')?.[0]).toBeGreaterThan(0.02);
      const f = cached(async (x: number) => x, { cache, name: 'f' });
      await f(1);
      await f(1);
      expect(r.n('cache_hits_total', { tier: 'local' })).toBe(2);
      await cache.delete('a');
      expect(r.n('cache_deletes_total')).toBe(1);
      expect(r.n('cache_backend_errors_total')).toBe(0);
    } finally {
      await cache.close();
    }
  });
});
