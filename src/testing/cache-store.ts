/**
 * The {@link CacheStore} contract: the store's own operations, then {@link DistributedCache}
 * running on the store (what users see).
 */
import { type CacheStore, DistributedCache } from '../cache/index.js';
import { prepareSuite } from './api.js';
import { type SharedStoreSuiteOptions, StorePool } from './shared.js';
import { manyKeys, sleep, uniqueName, waitFor } from './util.js';

/** Options of {@link describeCacheStore}. */
export type CacheStoreSuiteOptions = SharedStoreSuiteOptions;

/**
 * Registers the `CacheStore` contract suite (vitest `describe`/`it`) for one backend. Every test
 * gets a fresh store from `factory` and closes it; keys carry a prefix unique to the run, so
 * the backend need not be empty and parallel runs do not meet.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store (connected or connecting) each time it is called.
 * @param options - See {@link CacheStoreSuiteOptions}.
 * @example
 * // test/my-store.test.ts, run by vitest
 * import { describeCacheStore } from 'azscale/testing';
 * import { MyCacheStore } from '../src/my-store.js';
 *
 * describeCacheStore('my store', () => new MyCacheStore(process.env.MY_URL), { shared: true });
 */
export function describeCacheStore(
  name: string,
  factory: () => CacheStore | Promise<CacheStore>,
  options?: CacheStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, it, expect, afterEach } = t;

  describe(`CacheStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    const store = async () => {
      const s = await pool.make();
      await s.ping();
      return s;
    };
    const caches: DistributedCache[] = [];
    const cache = (s: CacheStore, prefix = uniqueName('cache')) => {
      // backendTimeout 10 s: these tests count and compare, they do not time, and the 1 s default
      // is shorter than a round trip can take on a loaded CI machine.
      const c = new DistributedCache({
        store: s,
        prefix,
        onBackendError: 'throw',
        backendTimeout: 10,
      });
      caches.push(c);
      return c;
    };
    afterEach(async () => {
      await Promise.all(caches.splice(0).map((c) => c.close()));
      await pool.closeAll();
    });

    it(
      'names its kind; get of a missing key is null; set then get returns the value',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        expect(typeof s.kind).toBe('string');
        expect(s.kind.length).toBeGreaterThan(0);
        expect(await s.get(`${p}a`)).toBeNull();
        await s.set(`${p}a`, 'héllo ✓ \u{1F600}', 60);
        expect(await s.get(`${p}a`)).toBe('héllo ✓ \u{1F600}');
        await s.set(`${p}a`, '', 60);
        expect(await s.get(`${p}a`)).toBe('');
        const big = 'x'.repeat(512 * 1024);
        await s.set(`${p}big`, big, 60);
        expect(await s.get(`${p}big`)).toBe(big);
      },
      timeout,
    );

    it(
      'keys named like Object.prototype members are ordinary keys',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        for (const k of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
          expect(await s.get(k + p)).toBeNull();
          expect(await s.get(`${p}${k}`)).toBeNull();
          await s.set(`${p}${k}`, `v-${k}`, 60);
          expect(await s.get(`${p}${k}`)).toBe(`v-${k}`);
        }
        expect(await s.getMany([`${p}__proto__`, `${p}missing`])).toEqual(['v-__proto__', null]);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      },
      timeout,
    );

    it(
      'entries expire after their ttl (seconds, fractions allowed)',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        await s.set(`${p}ttl`, 'x', 0.5);
        await s.setMany([[`${p}ttl2`, 'y']], 0.5);
        await s.set(`${p}long`, 'z', 60);
        expect(await s.get(`${p}ttl`)).toBe('x');
        await waitFor(async () => (await s.get(`${p}ttl`)) === null, 'expiry after 0.5 s');
        await waitFor(async () => (await s.get(`${p}ttl2`)) === null, 'setMany expiry after 0.5 s');
        expect(await s.get(`${p}long`)).toBe('z');
      },
      timeout,
    );

    it(
      'delete reports whether the key existed',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        await s.set(`${p}d`, 'v', 60);
        expect(await s.delete(`${p}d`)).toBe(true);
        expect(await s.delete(`${p}d`)).toBe(false);
        expect(await s.get(`${p}d`)).toBeNull();
      },
      timeout,
    );

    it(
      'getMany keeps order and nulls over keys in many slots, duplicates included',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        const keys = manyKeys(p, 300);
        const entries = keys.filter((_, i) => i % 3 !== 0).map((k) => [k, `v:${k}`] as const);
        await s.setMany(entries, 60);
        const got = await s.getMany(keys);
        expect(got).toHaveLength(keys.length);
        for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 3 === 0 ? null : `v:${k}`);
        expect(await s.getMany([])).toEqual([]);
        await s.setMany([], 60);
        // Hash-tagged keys (one slot, several keys) and a repeated key in one batch.
        const tagged = [`{${p}t}a`, `{${p}t}b`, `{${p}t}a`, keys[1] as string];
        await s.setMany(
          [
            [`{${p}t}a`, 'A'],
            [`{${p}t}b`, 'B'],
          ],
          60,
        );
        expect(await s.getMany(tagged)).toEqual(['A', 'B', 'A', got[1]]);
      },
      timeout,
    );

    it(
      'concurrent single gets each get their own key (reads issued together may be batched)',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        const keys = manyKeys(p, 120);
        await s.setMany(
          keys.filter((_, i) => i % 4 !== 0).map((k) => [k, `v:${k}`] as const),
          60,
        );
        const got = await Promise.all(keys.map((k) => s.get(k)));
        for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 4 === 0 ? null : `v:${k}`);
      },
      timeout,
    );

    it(
      'setIfAbsent / deleteIfEquals behave as a lock, one winner among concurrent takers',
      async () => {
        const s = await store();
        const p = uniqueName('cstore');
        expect(await s.setIfAbsent(`${p}lock`, 'me', 5)).toBe(true);
        expect(await s.setIfAbsent(`${p}lock`, 'you', 5)).toBe(false);
        expect(await s.deleteIfEquals(`${p}lock`, 'you')).toBe(false);
        expect(await s.get(`${p}lock`)).toBe('me');
        expect(await s.deleteIfEquals(`${p}lock`, 'me')).toBe(true);
        expect(await s.deleteIfEquals(`${p}lock`, 'me')).toBe(false);
        const wins = await Promise.all(
          Array.from({ length: 20 }, (_, i) => s.setIfAbsent(`${p}race`, `c${i}`, 5)),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
        expect(await s.get(`${p}race`)).toBe(`c${wins.indexOf(true)}`);
        // A lock expires with its ttl, so a crashed holder does not keep it.
        expect(await s.setIfAbsent(`${p}short`, 'dead', 0.3)).toBe(true);
        await waitFor(() => s.setIfAbsent(`${p}short`, 'next', 5), 'lock expiry after 0.3 s');
        expect(await s.get(`${p}short`)).toBe('next');
      },
      timeout,
    );

    it(
      'close is idempotent',
      async () => {
        const s = await factory();
        await s.ping();
        await s.close();
        await s.close();
      },
      timeout,
    );

    if (options?.shared) {
      it(
        'a second store from the factory sees the first one’s writes and deletes',
        async () => {
          const a = await store();
          const b = await store();
          const p = uniqueName('cstore');
          await a.set(`${p}x`, '1', 60);
          expect(await b.get(`${p}x`)).toBe('1');
          expect(await b.setIfAbsent(`${p}x`, '2', 60)).toBe(false);
          expect(await b.delete(`${p}x`)).toBe(true);
          expect(await a.get(`${p}x`)).toBeNull();
        },
        timeout,
      );
    }

    it(
      'DistributedCache on the store: get/set/delete, default and explicit ttl',
      async () => {
        const c = cache(await store());
        expect(await c.get('a')).toBeNull();
        await c.set('a', '1');
        expect(await c.get('a')).toBe('1');
        await c.set('a', '2', 0.5);
        expect(await c.get('a')).toBe('2');
        await waitFor(async () => (await c.get('a')) === null, 'cache entry expiry after 0.5 s');
        await c.set('b', 'x');
        expect(await c.delete('b')).toBe(true);
        expect(await c.get('b')).toBeNull();
      },
      timeout,
    );

    it(
      'DistributedCache on the store: getBatch/setBatch keep order and misses',
      async () => {
        const c = cache(await store());
        const keys = manyKeys('', 500);
        await c.setBatch(
          keys.filter((_, i) => i % 2 === 0).map((k) => [k, `v${k}`] as [string, string]),
        );
        const got = await c.getBatch(keys);
        for (const [i, k] of keys.entries()) expect(got[i]).toBe(i % 2 === 0 ? `v${k}` : null);
        await c.setBatch({ x: '1', y: '2' });
        await c.setBatch(new Map([['z', '3']]), 60);
        expect(await c.getBatch(['x', 'y', 'z', 'nope', 'x'])).toEqual(['1', '2', '3', null, '1']);
        expect(await c.getBatch([])).toEqual([]);
      },
      timeout,
    );

    it(
      'DistributedCache on the store: getJSON/setJSON and single-flight getOrSet',
      async () => {
        const c = cache(await store());
        await c.setJSON('j', { a: [1, 'two', null], b: { c: true } });
        expect(await c.getJSON('j')).toEqual({ a: [1, 'two', null], b: { c: true } });
        expect(await c.getJSON('missing')).toBeNull();
        let calls = 0;
        const loader = async () => {
          calls++;
          await sleep(50);
          return `v${calls}`;
        };
        const got = await Promise.all(Array.from({ length: 20 }, () => c.getOrSet('k', loader)));
        expect(new Set(got)).toEqual(new Set(['v1']));
        expect(calls).toBe(1);
        expect(await c.getOrSet('k', loader)).toBe('v1');
        expect(calls).toBe(1);
        const boom = async (): Promise<string> => {
          calls++;
          throw new Error('loader failed');
        };
        const rs = await Promise.allSettled([c.getOrSet('f', boom), c.getOrSet('f', boom)]);
        expect(rs.map((r) => r.status)).toEqual(['rejected', 'rejected']);
        expect(calls).toBe(2);
        expect(await c.get('f')).toBeNull();
      },
      timeout,
    );

    it(
      'DistributedCache on the store: the prefix isolates two caches on one store',
      async () => {
        const s = await store();
        const a = cache(s);
        const b = cache(s);
        await a.set('same', 'A');
        expect(await b.get('same')).toBeNull();
        await b.set('same', 'B');
        expect(await a.get('same')).toBe('A');
      },
      timeout,
    );
  });
}
