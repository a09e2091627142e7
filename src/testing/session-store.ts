/**
 * The {@link SessionStore} contract: the store's own seven operations, then
 * {@link DistributedSessionManager} running on the store (what users see).
 */
import {
  DistributedSessionManager,
  type DistributedSessionManagerOptions,
  type SessionStore,
} from '../session/index.js';
import { SerializationError, ValueTooLargeError } from '../core/errors.js';
import { type SuiteOptions, prepareSuite } from './api.js';
import { sessionAppendCases } from './session-append-cases.js';
import type { SessionContext } from './session-context.js';
import { sessionUpdateCases } from './session-update-cases.js';
import { StorePool } from './shared.js';
import { uniqueName, waitFor } from './util.js';

/** Options of {@link describeSessionStore}. */
export interface SessionStoreSuiteOptions extends SuiteOptions {
  /**
   * True when the store honours `opId` (see `SessionAppendOptions.opId`): a `compareAndSet`
   * resent with the same id after it already wrote (its reply was lost) answers `true` again and
   * writes nothing more. Every backend whose client may resend a command must; an in-process
   * store has no such risk and may ignore the id.
   * @default false
   */
  replaySafe?: boolean;
}

/**
 * Registers the `SessionStore` contract suite (vitest `describe`/`it`) for one backend: the
 * store's operations with their millisecond TTLs and compare-and-set, then the session manager
 * on it (appends that lose nothing under concurrency, `updateSession` conflict detection against
 * foreign writers, size caps, malformed stored text). Every manager gets a fresh store from
 * `factory` (the manager closes it) and a key prefix unique to the run.
 * @param name - The backend's name in the test titles.
 * @param factory - Returns a new store each time it is called.
 * @param options - See {@link SessionStoreSuiteOptions}.
 * @example
 * import { describeSessionStore } from 'azscale/testing';
 * import { RedisSessionStore } from 'azscale/session';
 *
 * describeSessionStore('redis', () => new RedisSessionStore(process.env.REDIS_URL), {
 *   replaySafe: true,
 * });
 */
export function describeSessionStore(
  name: string,
  factory: () => SessionStore | Promise<SessionStore>,
  options?: SessionStoreSuiteOptions,
): void {
  const { t, timeout } = prepareSuite(name, factory, options);
  const { describe, expect, afterEach } = t;
  const it = (title: string, fn: () => Promise<void>) => t.it(title, fn, timeout);

  describe(`SessionStore contract: ${name}`, () => {
    const pool = new StorePool(factory);
    const managers: DistributedSessionManager[] = [];
    const make = async (o: DistributedSessionManagerOptions = {}) => {
      const store = await factory();
      const m = new DistributedSessionManager({ prefix: uniqueName('session'), ...o, store });
      managers.push(m);
      return m;
    };
    afterEach(async () => {
      await Promise.all(managers.splice(0).map((m) => m.close()));
      await pool.closeAll();
    });

    it('store: get/set/delete/expire/ttl with millisecond expiries', async () => {
      const s = await pool.make();
      const k = `${uniqueName('session')}a`;
      expect(await s.get(k)).toBeNull();
      expect(await s.ttl(k)).toBeNull();
      expect(await s.delete(k)).toBe(false);
      expect(await s.expire(k, 60_000)).toBe(false);
      await s.set(k, '{"messages":[]}', 30_000);
      expect(await s.get(k)).toBe('{"messages":[]}');
      const left = (await s.ttl(k)) as number;
      expect(left).toBeGreaterThan(25_000);
      expect(left).toBeLessThanOrEqual(30_000);
      expect(await s.expire(k, 120_000)).toBe(true);
      expect(await s.ttl(k)).toBeGreaterThan(100_000);
      // A read with touchTtlMs resets the expiry in the same step.
      expect(await s.get(k, 5_000)).toBe('{"messages":[]}');
      expect(await s.ttl(k)).toBeLessThanOrEqual(5_000);
      expect(await s.delete(k)).toBe(true);
      expect(await s.get(k)).toBeNull();
      await s.set(k, 'x', 400);
      await waitFor(async () => (await s.get(k)) === null, 'expiry after 400 ms');
      expect(await s.ttl(k)).toBeNull();
    });

    it('store: compareAndSet writes only over the exact expected value', async () => {
      const s = await pool.make();
      const k = `${uniqueName('session')}c`;
      expect(await s.compareAndSet(k, '{"a":1}', '{"a":2}', 60_000)).toBe(false);
      expect(await s.get(k)).toBeNull();
      expect(await s.compareAndSet(k, null, '{"a":1}', 60_000)).toBe(true);
      expect(await s.compareAndSet(k, null, '{"a":9}', 60_000)).toBe(false);
      expect(await s.compareAndSet(k, '{"a": 1}', '{"a":9}', 60_000)).toBe(false);
      expect(await s.compareAndSet(k, '{"a":1}', '{"a":2}', 60_000)).toBe(true);
      expect(await s.get(k)).toBe('{"a":2}');
      // Same length, one character apart, past any inline-comparison size.
      const big = 'x'.repeat(40_000);
      await s.set(k, `a${big}`, 60_000);
      expect(await s.compareAndSet(k, `b${big}`, '{}', 60_000)).toBe(false);
      expect(await s.compareAndSet(k, `a${big}`, '{}', 60_000)).toBe(true);
      const wins = await Promise.all(
        Array.from({ length: 10 }, (_, i) => s.compareAndSet(k, '{}', `{"w":${i}}`, 60_000)),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
    });

    it('store: append creates, appends, trims to maxItems and refuses what does not fit', async () => {
      const s = await pool.make();
      const k = `${uniqueName('session')}p`;
      const opts = { ttlMs: 60_000, maxBytes: 10_000 };
      expect(await s.append(k, '{"n":1}', opts)).toBe(1);
      expect(await s.append(k, '{"n":2},{"n":3}', { ...opts, count: 2 })).toBe(3);
      expect(await s.append(k, '{"n":4}', { ...opts, maxItems: 2 })).toBe(2);
      expect(JSON.parse((await s.get(k)) as string)).toEqual({ messages: [{ n: 3 }, { n: 4 }] });
      const before = await s.get(k);
      await expect(s.append(k, `"${'y'.repeat(200)}"`, { ...opts, maxBytes: 100 })).rejects.toThrow(
        ValueTooLargeError,
      );
      await s.set(k, '[1]', 60_000);
      await expect(s.append(k, '1', opts)).rejects.toThrow(SerializationError);
      expect(await s.get(k)).toBe('[1]');
      await s.set(k, before as string, 60_000);
      expect(await s.get(k)).toBe(before);
    });

    if (options?.replaySafe) {
      it('store: a compareAndSet resent with the same opId answers true again, applied once', async () => {
        const s = await pool.make();
        const k = `${uniqueName('session')}r`;
        await s.set(k, '{"messages":[]}', 60_000);
        const cur = '{"messages":[]}';
        const next = '{"messages":[1]}';
        expect(await s.compareAndSet(k, cur, next, 60_000, 'op-cas-1')).toBe(true);
        // The resend: the same command, whose first run already wrote.
        expect(await s.compareAndSet(k, cur, next, 60_000, 'op-cas-1')).toBe(true);
        expect(await s.get(k)).toBe(next);
        // Another call with the same expectation is not a resend: the value changed.
        expect(await s.compareAndSet(k, cur, '{"messages":[2]}', 60_000, 'op-cas-2')).toBe(false);
        expect(await s.get(k)).toBe(next);
      });
    }

    it('store: close is idempotent', async () => {
      const s = await factory();
      await s.close();
      await s.close();
    });

    const ctx: SessionContext = { it, expect, make };
    sessionAppendCases(ctx);
    sessionUpdateCases(ctx);
  });
}
