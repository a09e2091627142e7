/**
 * Defect 12 (cache part): getBatch/setBatch accept any number of keys and send them in chunks
 * of `chunkSize` (default 1,000) per round trip; on a Cluster each chunk is still grouped per
 * node and slot.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { isValidationError } from '../../src/core/errors.js';
import { servers, startRedisServer, uniquePrefix } from '../harness/env.js';

async function commandCalls(probe: Redis, command: string): Promise<number> {
  const info = await probe.info('commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

describe('batches are sent in chunks (standalone)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('5,000 keys: 5 MGETs of 1,000 (default), and one invalidation message per chunk', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const probe = new Redis(own.url);
    cleanups.push(async () => probe.disconnect());
    const cache = new DistributedCache({ redis: own.url, prefix: 'chunks:', backendTimeout: 10 });
    cleanups.push(() => cache.close());
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
    const pub0 = await commandCalls(probe, 'publish');
    await cache.setBatch(
      keys.map((k) => [k, `v-${k}`] as [string, string]),
      60,
    );
    expect((await commandCalls(probe, 'publish')) - pub0).toBe(5);
    const mget0 = await commandCalls(probe, 'mget');
    const got = await cache.getBatch([...keys, 'absent']);
    expect((await commandCalls(probe, 'mget')) - mget0).toBe(6);
    expect(got).toEqual([...keys.map((k) => `v-${k}`), null]);
    expect(Number(await probe.dbsize())).toBe(5000);
  });

  it('chunkSize sets the keys per round trip; 60,000 keys in one call work', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const probe = new Redis(own.url);
    cleanups.push(async () => probe.disconnect());
    const cache = new DistributedCache({
      redis: own.url,
      chunkSize: 300,
      local: true,
      backendTimeout: 10,
    });
    cleanups.push(() => cache.close());
    const keys = Array.from({ length: 3000 }, (_, i) => `k${i}`);
    await cache.setBatch(
      keys.map((k) => [k, k.toUpperCase()] as [string, string]),
      60,
    );
    // Half in L1, half not: only the misses are asked for, still in chunks.
    const l1 = cache._hot;
    for (let i = 0; i < 3000; i += 2) l1?.delete(`k${i}`);
    const calls0 = await commandCalls(probe, 'pttl');
    expect(await cache.getBatch(keys)).toEqual(keys.map((k) => k.toUpperCase()));
    // 1,500 misses in chunks of 300: GET+PTTL per key, every key asked for once.
    expect((await commandCalls(probe, 'pttl')) - calls0).toBe(1500);

    const many = Array.from({ length: 60_000 }, (_, i) => `m${i}`);
    const plain = new DistributedCache({ redis: own.url, backendTimeout: 10 });
    cleanups.push(() => plain.close());
    await plain.setBatch(
      many.map((k) => [k, 'x'] as [string, string]),
      60,
    );
    const vals = await plain.getBatch(many);
    expect(vals.length).toBe(60_000);
    expect(vals.every((v) => v === 'x')).toBe(true);
  }, 60_000);

  it('rejects a bad chunkSize with a ValidationError naming it', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '1000', 1e9]) {
      let err: unknown;
      try {
        new DistributedCache({ chunkSize: bad as number });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), String(bad)).toBe(true);
      expect((err as { option?: string }).option).toBe('chunkSize');
    }
  });
});

describe('batches are sent in chunks (cluster)', () => {
  it('7,000 keys over 3 masters in chunks of 500 read back in order', async () => {
    const s = servers();
    const cache = new DistributedCache({
      redis: { nodes: s.clusterNodes },
      prefix: uniquePrefix('cchunks'),
      chunkSize: 500,
      backendTimeout: 10,
    });
    try {
      const keys = Array.from({ length: 7000 }, (_, i) => `k${i}`);
      await cache.setBatch(
        keys.map((k, i) => [k, `v${i}`] as [string, string]),
        60,
      );
      const got = await cache.getBatch(keys);
      expect(got).toEqual(keys.map((_, i) => `v${i}`));
    } finally {
      await cache.close();
    }
  }, 60_000);
});
