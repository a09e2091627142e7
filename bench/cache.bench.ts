/**
 * Cache, side by side in one run on the same servers:
 * - getBatch of 1000 keys vs one raw ioredis MGET (<= 1.05x, issue 14) and vs 1000 sequential GETs
 *   (>= 20x faster), standalone Redis;
 * - Cluster getBatch of 1000 keys vs hand-written per-node pipelines (<= 1.3x);
 * - an L1 hit through `cached` vs the hand-written `lru.get(JSON.stringify(args))` (<= 2x), with
 *   Redis behind the L1 and in memory-only mode;
 * - getOrSet on a Redis hit vs cache-manager 7 `wrap` (Keyv + @keyv/redis) on the same Redis
 *   (target: faster);
 * - the codec's decode of a cached JSON value (what getJSON/getOrSetJSON/`cached` misses run) vs
 *   JSON.parse (<= 1.1x, issue 14).
 */
import { createRequire } from 'node:module';
import KeyvRedis from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Cluster, Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import { DistributedCache, cached } from '../src/cache/index.js';
import { JsonCodec } from '../src/core/codec.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

// The slot function ioredis itself uses (its dependency), so the raw side is what a user would
// hand-write with the same tools.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const N = 1000;

const suite: BenchSuite = async (ctx) => {
  const rows: BenchRow[] = [];
  const prefix = `bench-cache-${process.pid}:`;
  const keys = Array.from({ length: N }, (_, i) => `item:${i}`);
  const full = keys.map((k) => prefix + k);
  const value = 'v'.repeat(100);

  const raw = new Redis(ctx.redisUrl);
  const cache = new DistributedCache({ redis: ctx.redisUrl, prefix });
  // For the MGET rows: same keys on both sides, so the ratio is our overhead alone (a prefix
  // would add 1000 string concatenations that the raw call does not do).
  const plain = new DistributedCache({ redis: ctx.redisUrl });
  const rawCluster = new Cluster(ctx.clusterNodes);
  const clusterCache = new DistributedCache({ redis: { nodes: ctx.clusterNodes }, prefix });
  const l1Cache = new DistributedCache({
    redis: ctx.redisUrl,
    prefix,
    local: { max: 10_000, ttl: 600 },
  });
  const memCache = new DistributedCache({ prefix });
  const cmKeyv = new Keyv({ store: new KeyvRedis(ctx.redisUrl), namespace: `${prefix}cm` });
  const cm = createCache({ stores: [cmKeyv] });

  try {
    await cache.setBatch(
      keys.filter((_, i) => i % 10 !== 0).map((k) => [k, value] as [string, string]),
      600,
    );
    await clusterCache.setBatch(
      keys.filter((_, i) => i % 10 !== 0).map((k) => [k, value] as [string, string]),
      600,
    );
    await cache.ready();
    await plain.ready();
    await clusterCache.ready();

    rows.push(
      await compare({
        group: 'cache',
        case: `getBatch ${N} keys (redis)`,
        ours: () => plain.getBatch(full),
        theirsLabel: 'ioredis MGET',
        theirs: () => raw.mget(full),
        iterations: 400,
        rounds: 5,
        maxRatio: 1.05,
      }),
    );

    rows.push(
      await compare({
        group: 'cache',
        case: `getBatch ${N} keys (redis)`,
        ours: () => plain.getBatch(full),
        theirsLabel: `${N} sequential GETs`,
        theirs: async () => {
          for (const k of full) await raw.get(k);
        },
        iterations: 15,
        warmup: 2,
        rounds: 2,
        minSpeedup: 20,
      }),
    );

    // Hand-written per-node pipelines: slot of each key, owner from the client's slot table,
    // one pipeline of GETs per node, all nodes in parallel.
    const rawPerNode = async () => {
      const groups = new Map<string, number[]>();
      for (let i = 0; i < full.length; i++) {
        const node = rawCluster.slots[calculateSlot(full[i] as string)]?.[0] ?? '';
        let g = groups.get(node);
        if (!g) groups.set(node, (g = []));
        g.push(i);
      }
      const out = new Array<string | null>(full.length);
      await Promise.all(
        [...groups.values()].map(async (idx) => {
          const p = rawCluster.pipeline();
          for (const i of idx) p.get(full[i] as string);
          const res = (await p.exec()) ?? [];
          for (let j = 0; j < idx.length; j++) {
            const r = res[j];
            if (r?.[0]) throw r[0];
            out[idx[j] as number] = (r?.[1] as string | null) ?? null;
          }
        }),
      );
      return out;
    };
    await rawPerNode();
    rows.push(
      await compare({
        group: 'cache',
        case: `getBatch ${N} keys (cluster, 3 masters)`,
        ours: () => clusterCache.getBatch(keys),
        theirsLabel: 'raw per-node pipelines',
        theirs: rawPerNode,
        iterations: 200,
        rounds: 5,
        maxRatio: 1.3,
      }),
    );

    // L1 hit through `cached` vs the hand-written memo on a raw lru-cache.
    const compute = async (user: string, n: number) => ({ user, n, score: n * 2 });
    const lru = new LRUCache<string, { user: string; n: number; score: number }>({
      max: 10_000,
      ttl: 600_000,
    });
    const handWritten = async (user: string, n: number) => {
      const k = JSON.stringify([user, n]);
      const hit = lru.get(k);
      if (hit !== undefined) return hit;
      const v = await compute(user, n);
      lru.set(k, v);
      return v;
    };
    const viaL1 = cached(compute, { cache: l1Cache, name: 'compute' });
    const viaMem = cached(compute, { cache: memCache, name: 'compute' });
    const users = Array.from({ length: 100 }, (_, i) => `user-${i}`);
    for (const u of users) {
      await viaL1(u, 7);
      await viaL1(u, 7);
      await viaMem(u, 7);
      await handWritten(u, 7);
    }
    let i1 = 0;
    let i2 = 0;
    rows.push(
      await compare({
        group: 'cache',
        case: 'cached() L1 hit (redis behind)',
        ours: () => viaL1(users[i1++ % 100] as string, 7),
        theirsLabel: 'lru.get(JSON.stringify(args))',
        theirs: () => handWritten(users[i2++ % 100] as string, 7),
        iterations: 200_000,
        rounds: 5,
        maxRatio: 2,
      }),
    );
    rows.push(
      await compare({
        group: 'cache',
        case: 'cached() hit (memory only)',
        ours: () => viaMem(users[i1++ % 100] as string, 7),
        theirsLabel: 'lru.get(JSON.stringify(args))',
        theirs: () => handWritten(users[i2++ % 100] as string, 7),
        iterations: 200_000,
        rounds: 5,
        maxRatio: 2,
      }),
    );

    // The codec's decode (size-checked, typed errors) vs plain JSON.parse on a ~2 KB value.
    const codec = new JsonCodec();
    const doc = JSON.stringify({
      items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })),
      total: 20,
    });
    let sink: unknown;
    rows.push(
      await compare({
        group: 'cache',
        case: 'codec decode (~1 KB JSON)',
        ours: async () => {
          sink = codec.decode(doc, 'value');
        },
        theirsLabel: 'JSON.parse',
        theirs: async () => {
          sink = JSON.parse(doc);
        },
        iterations: 50_000,
        rounds: 5,
        maxRatio: 1.1,
      }),
    );
    void sink;

    // getOrSet on a Redis hit vs cache-manager wrap on the same Redis.
    const loader = async () => value;
    for (const k of keys.slice(0, 100)) {
      await cache.getOrSet(`gos:${k}`, loader, 600);
      await cm.wrap(`gos:${k}`, loader, 600_000);
    }
    let g1 = 0;
    let g2 = 0;
    rows.push(
      await compare({
        group: 'cache',
        case: 'getOrSet hit (redis)',
        ours: () => cache.getOrSet(`gos:${keys[g1++ % 100]}`, loader, 600),
        theirsLabel: 'cache-manager wrap (@keyv/redis)',
        theirs: () => cm.wrap(`gos:${keys[g2++ % 100]}`, loader, 600_000),
        iterations: 3000,
        rounds: 3,
        maxRatio: 1,
      }),
    );
    rows.push(
      await compare({
        group: 'cache',
        case: 'getOrSet hit (redis), 50 in flight',
        ours: () => cache.getOrSet(`gos:${keys[g1++ % 100]}`, loader, 600),
        theirsLabel: 'cache-manager wrap (@keyv/redis)',
        theirs: () => cm.wrap(`gos:${keys[g2++ % 100]}`, loader, 600_000),
        iterations: 5000,
        concurrency: 50,
        rounds: 3,
        maxRatio: 1,
      }),
    );
  } finally {
    const scan = async (r: Redis) => {
      const found = await r.keys(`${prefix}*`);
      for (let i = 0; i < found.length; i += 500) await r.del(...found.slice(i, i + 500));
    };
    await scan(raw).catch(() => undefined);
    await Promise.all(
      rawCluster.nodes('master').map((n) => scan(n as unknown as Redis).catch(() => undefined)),
    );
    await Promise.all([cache, plain, clusterCache, l1Cache, memCache].map((c) => c.close()));
    await cm.disconnect().catch(() => undefined);
    raw.disconnect();
    rawCluster.disconnect();
  }
  return rows;
};

export default suite;
