import { describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { servers } from '../harness/env.js';
import { cacheContract } from './contract.js';

const s = servers();

// These tests count and compare, they do not time: the 1 s default backendTimeout (connecting
// included) is shorter than a round trip can take on a loaded machine.
const backendTimeout = 10;

cacheContract('memory', (prefix) => new DistributedCache({ prefix }), { shared: false });
cacheContract(
  'redis',
  (prefix) => new DistributedCache({ prefix, redis: s.redisUrl, backendTimeout }),
  {
    shared: true,
  },
);
cacheContract(
  'redis + local',
  (prefix) =>
    new DistributedCache({
      prefix,
      redis: s.redisUrl,
      local: { max: 1000, ttl: 5 },
      backendTimeout,
    }),
  { shared: true },
);
cacheContract(
  'cluster',
  (prefix) => new DistributedCache({ prefix, redis: { nodes: s.clusterNodes }, backendTimeout }),
  {
    shared: true,
  },
);
cacheContract(
  'cluster + local',
  (prefix) =>
    new DistributedCache({ prefix, redis: { nodes: s.clusterNodes }, local: true, backendTimeout }),
  { shared: true },
);

describe('Cluster getBatch', () => {
  it('spreads a batch over every master and reads it back in one call', async () => {
    const { Cluster } = await import('ioredis');
    const raw = new Cluster(s.clusterNodes);
    const cache = new DistributedCache({ redis: raw, prefix: 'azs-spread:', backendTimeout });
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`);
      await cache.setBatch(
        keys.map((k) => [k, k.toUpperCase()] as [string, string]),
        30,
      );
      const owners = new Set<string>();
      for (const k of keys) {
        const slot = Number(await raw.cluster('KEYSLOT', `azs-spread:${k}`));
        owners.add((raw.slots[slot] ?? [])[0] ?? '?');
      }
      expect(owners.size).toBe(3);
      expect(await cache.getBatch(keys)).toEqual(keys.map((k) => k.toUpperCase()));
    } finally {
      await cache.close();
      // A client we were given stays open.
      expect(raw.status).toBe('ready');
      raw.disconnect();
    }
  });
});

describe('pipeline reply errors are checked', () => {
  it('a WRONGTYPE reply inside a Cluster pipeline fails the batch instead of reading as a miss', async () => {
    const { Cluster } = await import('ioredis');
    const raw = new Cluster(s.clusterNodes);
    const prefix = 'azs-wrongtype:';
    const throwing = new DistributedCache({
      redis: raw,
      prefix,
      onBackendError: 'throw',
      backendTimeout,
    });
    const degrading = new DistributedCache({ redis: raw, prefix, backendTimeout });
    try {
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
      await throwing.setBatch(
        keys.map((k) => [k, 'v'] as [string, string]),
        30,
      );
      await raw.del(`${prefix}k17`);
      await raw.hset(`${prefix}k17`, 'f', 'v');
      const e = await throwing.getBatch(keys).catch((x: unknown) => x);
      expect(String((e as Error).message)).toMatch(/WRONGTYPE/);
      const events: string[] = [];
      degrading.on('backendError', (ev) => events.push(`${ev.operation}:${ev.error.message}`));
      expect(await degrading.getBatch(keys)).toEqual(keys.map(() => null));
      expect(events.some((x) => x.startsWith('getBatch:') && x.includes('WRONGTYPE'))).toBe(true);
      await raw.del(`${prefix}k17`);
      expect(await throwing.getBatch(keys)).toEqual(keys.map((k) => (k === 'k17' ? null : 'v')));
    } finally {
      await throwing.close();
      await degrading.close();
      raw.disconnect();
    }
  });
});

describe('password-protected Redis', () => {
  it('works with the password in the URL; a wrong one fails typed and redacted', async () => {
    const ok = new DistributedCache({ redis: s.redisAuthUrl, prefix: 'azs-auth:', backendTimeout });
    const badUrl = s.redisAuthUrl.replace(/:[^:@/]+@/, ':wrong-pass-123@');
    const bad = new DistributedCache({ redis: badUrl, onBackendError: 'throw' });
    try {
      await ok.set('k', 'v');
      expect(await ok.get('k')).toBe('v');
      const e = (await bad.get('k').catch((x: unknown) => x)) as Error & { code?: string };
      expect(e.code).toBe('AZS_BACKEND_UNAVAILABLE');
      expect(`${e.message} ${String((e.cause as Error | undefined)?.message)}`).not.toContain(
        'wrong-pass-123',
      );
    } finally {
      await ok.close();
      await bad.close();
    }
  });
});

describe('GET batching', () => {
  it('50 concurrent gets in one tick cost one MGET on standalone Redis', async () => {
    const { Redis } = await import('ioredis');
    const admin = new Redis(s.redisUrl);
    const own = await import('../harness/env.js').then((m) => m.startRedisServer());
    const cache = new DistributedCache({ redis: own.url, prefix: 'azs-batch:', backendTimeout });
    const probe = new Redis(own.url);
    try {
      await cache.setBatch(
        Array.from({ length: 50 }, (_, i) => [`k${i}`, `v${i}`] as [string, string]),
      );
      const mgets = async () => {
        const info = await probe.info('commandstats');
        return Number(/cmdstat_mget:calls=(\d+)/.exec(info)?.[1] ?? 0);
      };
      const before = await mgets();
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.get(`k${i}`)));
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
      expect((await mgets()) - before).toBe(1);
    } finally {
      await cache.close();
      probe.disconnect();
      admin.disconnect();
      await own.stop();
    }
  });
});

describe.each(['redis', 'cluster'] as const)(
  'L1 copies never outlive the Redis entry (%s)',
  (mode) => {
    it('an entry read into L1 expires from L1 when it expires in Redis', async () => {
      const { Cluster, Redis } = await import('ioredis');
      const raw = mode === 'cluster' ? new Cluster(s.clusterNodes) : new Redis(s.redisUrl);
      const prefix = `azs-l1ttl-${mode}-${Date.now()}:`;
      const cache = new DistributedCache({
        redis: mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl,
        prefix,
        local: { ttl: 60 },
        backendTimeout,
      });
      try {
        await cache.ready();
        // 1 s: the reads below must land inside it even on a loaded machine.
        await raw.set(`${prefix}short`, 'v', 'PX', 1000);
        await raw.set(`${prefix}b1`, 'x', 'PX', 1000);
        await raw.set(`${prefix}b2`, 'y', 'PX', 60_000);
        expect(await cache.get('short')).toBe('v');
        expect(await cache.getBatch(['b1', 'b2'])).toEqual(['x', 'y']);
        // Served from L1 now: a bypassing write is not seen...
        await raw.set(`${prefix}b2`, 'changed', 'PX', 60_000);
        expect(await cache.getBatch(['b1', 'b2'])).toEqual(['x', 'y']);
        await new Promise((r) => setTimeout(r, 1300));
        // ...but the short entries left L1 with their Redis TTL, not after local.ttl (60 s).
        expect(await cache.get('short')).toBeNull();
        expect(await cache.getBatch(['b1', 'b2'])).toEqual([null, 'y']);
      } finally {
        await cache.close();
        raw.disconnect();
      }
    });
  },
);
