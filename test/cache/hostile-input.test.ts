/**
 * Durations of any accepted size work (or are rejected naming the option and its maximum), and
 * Redis reply errors reach the user typed, without the command's arguments (values) inside.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedCache, cached, cachedLLMCall } from '../../src/cache/index.js';
import { safeReplyMessage } from '../../src/cache/reply-error.js';
import {
  isAzscaleError,
  isBackendUnavailableError,
  isValidationError,
} from '../../src/core/errors.js';
import { MAX_DURATION_SECONDS } from '../../src/core/timers.js';
import { servers, startRedisServer, uniquePrefix } from '../harness/env.js';

async function errorOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Every string reachable from an error: message, stack, context, cause chain, own fields. */
function textOf(e: unknown, seen = new Set<unknown>()): string {
  if (e === null || e === undefined || seen.has(e)) return '';
  if (typeof e !== 'object') return String(e);
  seen.add(e);
  let out = '';
  if (e instanceof Error) out += `${e.name} ${e.message} ${e.stack ?? ''} ${textOf(e.cause, seen)}`;
  for (const k of Object.getOwnPropertyNames(e)) {
    out += ` ${k} ${textOf((e as Record<string, unknown>)[k], seen)}`;
  }
  return out;
}

describe('durations', () => {
  it('non-finite, negative, zero and too-large durations: ValidationError naming option and max', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ ttl: Number.POSITIVE_INFINITY }, 'ttl'],
      [{ ttl: MAX_DURATION_SECONDS + 1 }, 'ttl'],
      [{ ttl: 1e17 }, 'ttl'],
      [{ backendTimeout: 3601 }, 'backendTimeout'],
      [{ backendTimeout: Number.NaN }, 'backendTimeout'],
      [{ local: { ttl: 1e300 } }, 'local.ttl'],
      [{ circuit: { halfOpenAfter: Number.POSITIVE_INFINITY } }, 'circuit.halfOpenAfter'],
      [{ lock: { ttl: 1e17 } }, 'lock.ttl'],
      [{ lock: { wait: -1 } }, 'lock.wait'],
      [{ lock: { poll: Number.NaN } }, 'lock.poll'],
      [{ lock: { wait: 1e12 } }, 'lock.wait'],
    ];
    for (const [opts, option] of bad) {
      let err: unknown;
      try {
        new DistributedCache(opts as never);
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err), JSON.stringify(opts)).toBe(true);
      expect((err as { option?: string }).option, JSON.stringify(opts)).toBe(option);
      const max = (err as { context: { max?: number } }).context.max;
      expect(typeof max).toBe('number');
      expect((err as Error).message).toContain(String(max));
    }
    const c = new DistributedCache();
    const calls: [() => unknown, string][] = [
      [() => c.set('k', 'v', 1e17), 'ttl'],
      [() => c.set('k', 'v', Number.NaN), 'ttl'],
      [() => c.setBatch([['k', 'v']], MAX_DURATION_SECONDS * 2), 'ttl'],
      [() => c.getOrSet('k', () => 'v', { ttl: 1e17 }), 'ttl'],
      [
        () => c.getOrSet('k', () => 'v', 60, { lock: { wait: Number.POSITIVE_INFINITY } }),
        'lock.wait',
      ],
      [() => cached(async () => 1, { ttl: 1e17 }), 'ttl'],
      [() => cachedLLMCall(c, { model: 'm', temperature: 0 }, () => 'x', { ttl: -1 }), 'ttl'],
    ];
    for (const [fn, option] of calls) {
      const e = await errorOf(fn);
      expect(isValidationError(e), String(fn)).toBe(true);
      expect((e as { option?: string }).option, String(fn)).toBe(option);
    }
    await c.close();
  });

  it.each(['redis', 'cluster'] as const)(
    'the largest accepted TTLs work on %s: entry and lock keep a valid expiry',
    async (mode) => {
      const s = servers();
      const prefix = uniquePrefix('maxttl');
      const raw = mode === 'cluster' ? new Cluster(s.clusterNodes) : new Redis(s.redisUrl);
      const cache = new DistributedCache({
        redis: mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl,
        prefix,
        onBackendError: 'throw',
        ttl: MAX_DURATION_SECONDS,
        local: { ttl: MAX_DURATION_SECONDS },
        backendTimeout: 3600,
      });
      try {
        await cache.set('a', 'x');
        await cache.set('b', 'y', MAX_DURATION_SECONDS);
        await cache.setBatch([['c', 'z']], MAX_DURATION_SECONDS);
        let lockTtl = -3;
        const v = await cache.getOrSet(
          'd',
          async () => {
            lockTtl = await raw.pttl(`${prefix}d:__azs_lock`);
            return 'w';
          },
          { ttl: MAX_DURATION_SECONDS, lock: { ttl: MAX_DURATION_SECONDS, wait: 1 } },
        );
        expect(v).toBe('w');
        expect(lockTtl).toBeGreaterThan(MAX_DURATION_SECONDS * 1000 - 60_000);
        for (const k of ['a', 'b', 'c', 'd']) {
          const pttl = await raw.pttl(`${prefix}${k}`);
          expect(pttl, k).toBeGreaterThan(MAX_DURATION_SECONDS * 1000 - 60_000);
        }
        // A tiny TTL still expires (never "no expiry").
        await cache.set('tiny', 't', 0.0001);
        const t = await raw.pttl(`${prefix}tiny`);
        expect(t === -2 || (t >= 0 && t <= 1)).toBe(true);
      } finally {
        await cache.close();
        raw.disconnect();
      }
    },
  );
});

describe('Redis reply errors are typed and carry no values', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('OOM on a write: AZS_BACKEND_UNAVAILABLE without the value; degrade mode reports it the same way', async () => {
    const own = await startRedisServer();
    cleanups.push(() => own.stop());
    const admin = new Redis(own.url);
    cleanups.push(async () => admin.disconnect());
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    const secret = `secret-value-${Date.now()}`;
    const throwing = new DistributedCache({
      redis: own.url,
      onBackendError: 'throw',
      circuit: false,
    });
    const degrading = new DistributedCache({ redis: own.url, circuit: false });
    cleanups.push(
      () => throwing.close(),
      () => degrading.close(),
    );
    const e = await errorOf(() => throwing.set('k', secret));
    expect(isBackendUnavailableError(e)).toBe(true);
    expect((e as { context: { reply?: string } }).context.reply).toBe('OOM');
    expect(textOf(e)).not.toContain(secret);
    expect(textOf(e)).toContain('OOM');
    const batch = await errorOf(() =>
      throwing.setBatch([
        ['k1', secret],
        ['k2', secret],
      ]),
    );
    expect(isBackendUnavailableError(batch)).toBe(true);
    expect(textOf(batch)).not.toContain(secret);

    const events: unknown[] = [];
    degrading.on('backendError', (ev) => events.push(ev.error));
    await degrading.set('k', secret);
    expect(events.length).toBeGreaterThan(0);
    for (const ev of events) {
      expect(isAzscaleError(ev)).toBe(true);
      expect(textOf(ev)).not.toContain(secret);
    }
    await admin.config('SET', 'maxmemory', '0');
  });

  it.each(['redis', 'cluster'] as const)(
    'WRONGTYPE (%s): an AzscaleError with the reply code, no command, degrades by default',
    async (mode) => {
      const s = servers();
      const prefix = uniquePrefix('wrongtype');
      const raw = mode === 'cluster' ? new Cluster(s.clusterNodes) : new Redis(s.redisUrl);
      const redis = mode === 'cluster' ? { nodes: s.clusterNodes } : s.redisUrl;
      const throwing = new DistributedCache({ redis, prefix, onBackendError: 'throw' });
      const degrading = new DistributedCache({ redis, prefix });
      try {
        const secretField = `field-${Date.now()}`;
        await raw.hset(`${prefix}h`, secretField, 'v');
        const e = await errorOf(() => throwing.get('h'));
        expect(isAzscaleError(e)).toBe(true);
        expect((e as { code: string }).code).toMatch(/^AZS_/);
        expect((e as { context: { reply?: string } }).context.reply).toBe('WRONGTYPE');
        expect('command' in (e as object)).toBe(false);
        expect('command' in ((e as Error).cause as object)).toBe(false);
        expect(textOf(e)).not.toContain(secretField);
        expect(await degrading.get('h')).toBeNull();
        const locked = await errorOf(() => throwing.getOrSet('h', () => 'x', { lock: true }));
        expect(isAzscaleError(locked)).toBe(true);
      } finally {
        await throwing.close();
        await degrading.close();
        raw.disconnect();
      }
    },
  );

  it('reply texts keep the code and command names, drop quoted values and script text', () => {
    expect(
      safeReplyMessage("ERR unknown command 'hunter2', with args beginning with: 'a' 'b' "),
    ).toBe("ERR unknown command '…'");
    expect(safeReplyMessage("ERR invalid expire time in 'set' command")).toBe(
      "ERR invalid expire time in 'set' command",
    );
    expect(
      safeReplyMessage(
        'ERR user_script:1: Script attempted to access key "user:42:password" @user_script:1: leaked text',
      ),
    ).not.toContain('password');
    expect(safeReplyMessage('x'.repeat(1000)).length).toBeLessThanOrEqual(201);
  });
});
