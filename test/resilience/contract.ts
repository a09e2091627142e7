/**
 * Contract suites for the three resilience stores. The memory stores define the semantics; the
 * Redis scripts (standalone and Cluster) must behave the same.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { BreakerStateStore, RateStore, SemaphoreStore } from '../../src/resilience/index.js';
import { uniquePrefix } from '../harness/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function breakerStoreContract(label: string, make: () => BreakerStateStore): void {
  describe(`BreakerStateStore contract: ${label}`, () => {
    const store = make();
    afterAll(() => store.close());

    it('starts closed, opens once, and a second open keeps the first period', async () => {
      const name = uniquePrefix('b');
      expect((await store.read(name)).state).toBe('closed');
      const v1 = await store.open(name, 5000);
      expect(v1.state).toBe('open');
      expect(v1.remainingMs).toBeGreaterThan(4000);
      expect(v1.remainingMs).toBeLessThanOrEqual(5000);
      const v2 = await store.open(name, 60_000);
      expect(v2.generation).toBe(v1.generation);
      expect(v2.remainingMs).toBeLessThanOrEqual(5000);
      expect((await store.read(name)).state).toBe('open');
    });

    it('grants no trial before the open period ends, then exactly one', async () => {
      const name = uniquePrefix('b');
      await store.open(name, 150);
      expect((await store.tryTrial(name, 'a', 5000)).granted).toBe(false);
      await sleep(200);
      const results = await Promise.all(
        ['a', 'b', 'c', 'd', 'e'].map((o) => store.tryTrial(name, o, 5000)),
      );
      expect(results.filter((r) => r.granted)).toHaveLength(1);
      expect((await store.read(name)).state).toBe('half-open');
    });

    it('a successful trial closes for everyone; only the owner can settle', async () => {
      const name = uniquePrefix('b');
      await store.open(name, 1);
      await sleep(10);
      expect((await store.tryTrial(name, 'owner', 5000)).granted).toBe(true);
      expect((await store.settleTrial(name, 'intruder', true, 1000)).state).toBe('half-open');
      const v = await store.settleTrial(name, 'owner', true, 1000);
      expect(v.state).toBe('closed');
      expect((await store.read(name)).state).toBe('closed');
    });

    it('a failed trial opens again for a fresh period', async () => {
      const name = uniquePrefix('b');
      await store.open(name, 1);
      await sleep(10);
      const t = await store.tryTrial(name, 'owner', 5000);
      expect(t.granted).toBe(true);
      const v = await store.settleTrial(name, 'owner', false, 3000);
      expect(v.state).toBe('open');
      expect(v.remainingMs).toBeGreaterThan(2000);
      expect(v.generation).toBeGreaterThan(t.view.generation);
    });

    it('a repeated claim by the trial owner (a resend) is granted again, nobody else is', async () => {
      const name = uniquePrefix('b');
      await store.open(name, 1);
      await sleep(10);
      const first = await store.tryTrial(name, 'owner', 5000);
      expect(first.granted).toBe(true);
      const again = await store.tryTrial(name, 'owner', 5000);
      expect(again.granted).toBe(true);
      expect(again.view.generation).toBe(first.view.generation);
      expect((await store.tryTrial(name, 'other', 5000)).granted).toBe(false);
    });

    it('generations keep growing across names and after a close', async () => {
      const a = uniquePrefix('b');
      const g0 = (await store.read(a)).generation;
      const g1 = (await store.open(a, 1)).generation;
      expect(g1).toBeGreaterThan(g0);
      await store.reset(a);
      const g2 = (await store.read(a)).generation;
      expect(g2).toBeGreaterThan(g1);
      expect((await store.open(a, 1000)).generation).toBeGreaterThan(g2);
    });

    it('a trial whose owner vanished is taken over after its lease', async () => {
      const name = uniquePrefix('b');
      await store.open(name, 1);
      await sleep(10);
      expect((await store.tryTrial(name, 'dead', 100)).granted).toBe(true);
      expect((await store.tryTrial(name, 'next', 100)).granted).toBe(false);
      await sleep(150);
      expect((await store.tryTrial(name, 'next', 100)).granted).toBe(true);
    });

    it('reset closes and bumps the generation', async () => {
      const name = uniquePrefix('b');
      const v = await store.open(name, 60_000);
      await store.reset(name);
      const r = await store.read(name);
      expect(r.state).toBe('closed');
      expect(r.generation).toBeGreaterThan(v.generation);
    });
  });
}

export function semaphoreStoreContract(label: string, make: () => SemaphoreStore): void {
  describe(`SemaphoreStore contract: ${label}`, () => {
    const store = make();
    afterAll(() => store.close());

    it('grants up to the limit in weight and refuses beyond it', async () => {
      const key = uniquePrefix('s');
      expect((await store.acquire(key, 'a', 2, 3, 10_000)).acquired).toBe(true);
      const b = await store.acquire(key, 'b', 2, 3, 10_000);
      expect(b.acquired).toBe(false);
      expect(b.used).toBe(2);
      expect(b.retryHintMs).toBeGreaterThan(0);
      expect((await store.acquire(key, 'c', 1, 3, 10_000)).acquired).toBe(true);
      expect(await store.used(key)).toBe(3);
    });

    it('acquire is idempotent per lease id', async () => {
      const key = uniquePrefix('s');
      expect((await store.acquire(key, 'a', 1, 1, 10_000)).acquired).toBe(true);
      expect((await store.acquire(key, 'a', 1, 1, 10_000)).acquired).toBe(true);
      expect(await store.used(key)).toBe(1);
    });

    it('release frees the slot once', async () => {
      const key = uniquePrefix('s');
      await store.acquire(key, 'a', 1, 1, 10_000);
      expect(await store.release(key, 'a')).toBe(true);
      expect(await store.release(key, 'a')).toBe(false);
      expect((await store.acquire(key, 'b', 1, 1, 10_000)).acquired).toBe(true);
    });

    it('never grants more than the limit to concurrent acquirers', async () => {
      const key = uniquePrefix('s');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.acquire(key, `l${i}`, 1, 5, 10_000)),
      );
      expect(results.filter((r) => r.acquired)).toHaveLength(5);
      expect(await store.used(key)).toBe(5);
    });

    it('gives a freed slot to the process waiting longest, not to whoever asks first', async () => {
      const key = uniquePrefix('s');
      const A = { id: 'proc-a', more: false, staleMs: 10_000 };
      const B = { id: 'proc-b', more: false, staleMs: 10_000 };
      expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
      expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(false);
      await store.release(key, 'x');
      // A was not in line: B is ahead of it.
      expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(false);
      expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(true);
      await store.release(key, 'b1');
      expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(true);
    });

    it('a process with more callers goes to the back of the line after each grant', async () => {
      const key = uniquePrefix('s');
      const A = { id: 'proc-a', more: true, staleMs: 10_000 };
      const B = { id: 'proc-b', more: true, staleMs: 10_000 };
      expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
      expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(false);
      expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(false);
      await store.release(key, 'x');
      expect((await store.acquire(key, 'a1', 1, 1, 10_000, A)).acquired).toBe(true);
      await store.release(key, 'a1');
      // A went to the back when it was served: B's turn, although A asks first.
      expect((await store.acquire(key, 'a2', 1, 1, 10_000, A)).acquired).toBe(false);
      expect((await store.acquire(key, 'b1', 1, 1, 10_000, B)).acquired).toBe(true);
      await store.release(key, 'b1');
      expect((await store.acquire(key, 'b2', 1, 1, 10_000, B)).acquired).toBe(false);
      expect((await store.acquire(key, 'a2', 1, 1, 10_000, A)).acquired).toBe(true);
    });

    it('drops a waiter that stopped polling, and one that left', async () => {
      const key = uniquePrefix('s');
      // `dead` goes stale 2 s after it last polled: room for the four round trips before `me`
      // asks (100 ms was not, on a loaded Cluster), and then `me` waits just past it.
      const dead = { id: 'dead', more: false, staleMs: 2000 };
      const quit = { id: 'quit', more: false, staleMs: 10_000 };
      expect((await store.acquire(key, 'x', 1, 1, 10_000)).acquired).toBe(true);
      await store.acquire(key, 'd1', 1, 1, 10_000, dead);
      const deadPolled = performance.now();
      await store.acquire(key, 'q1', 1, 1, 10_000, quit);
      await store.release(key, 'x');
      await store.leave(key, 'quit');
      const me = { id: 'me', more: false, staleMs: 100 };
      expect((await store.acquire(key, 'm1', 1, 1, 10_000, me)).acquired).toBe(false);
      await sleep(Math.max(0, deadPolled + 2100 - performance.now()));
      expect((await store.acquire(key, 'm1', 1, 1, 10_000, { ...me, staleMs: 100 })).acquired).toBe(
        true,
      );
    });

    it('reclaims an expired lease; renew keeps a live one and fails for a lost one', async () => {
      const key = uniquePrefix('s');
      // Leases of 1 s, renewed at once and waited out by the clock: with 150 ms leases and fixed
      // 100 ms sleeps, a stalled event loop let 'live' run out before its renewal (Node 24 run).
      await store.acquire(key, 'dead', 1, 1, 1000);
      const deadAcquired = performance.now();
      await store.acquire(key, 'live', 1, 2, 1000);
      expect((await store.acquire(key, 'x', 1, 2, 10_000)).acquired).toBe(false);
      expect(await store.renew(key, 'live', 10_000)).toBe(true);
      await sleep(Math.max(0, deadAcquired + 1100 - performance.now()));
      // 'dead' ran out; 'live' was renewed.
      expect(await store.used(key)).toBe(1);
      expect((await store.acquire(key, 'x', 1, 2, 10_000)).acquired).toBe(true);
      expect(await store.renew(key, 'dead', 10_000)).toBe(false);
      expect(await store.release(key, 'dead')).toBe(false);
    });
  });
}

export function rateStoreContract(label: string, make: () => RateStore): void {
  describe(`RateStore contract: ${label}`, () => {
    const store = make();
    afterAll(() => store.close());
    const perMinute = (rpm: number, tpm = 0, tokens = 0) => ({
      requestIntervalMs: 60_000 / rpm,
      tokenIntervalMs: tpm ? 60_000 / tpm : 0,
      tokens,
      periodMs: 60_000,
    });

    it('allows a burst of the per-minute budget, then refuses with a retry time', async () => {
      const key = uniquePrefix('r');
      const cost = perMinute(6); // one request per 10 s, burst 6
      for (let i = 0; i < 6; i++) expect((await store.take(key, cost)).allowed).toBe(true);
      const r = await store.take(key, cost);
      expect(r.allowed).toBe(false);
      expect(r.retryAfterMs).toBeGreaterThan(9000);
      expect(r.retryAfterMs).toBeLessThanOrEqual(10_000);
    });

    it('charges tokens and refuses when the token budget is short, spending nothing', async () => {
      const key = uniquePrefix('r');
      const big = perMinute(1000, 10_000, 6000);
      expect((await store.take(key, big)).allowed).toBe(true);
      const r = await store.take(key, big);
      expect(r.allowed).toBe(false);
      // 2000 tokens over budget at 10k/min: 12 s.
      expect(r.retryAfterMs).toBeGreaterThan(11_000);
      expect(r.retryAfterMs).toBeLessThanOrEqual(12_000);
      // The refused call spent nothing: 4000 tokens still fit.
      expect((await store.take(key, perMinute(1000, 10_000, 4000))).allowed).toBe(true);
    });

    it('refills at the steady rate', async () => {
      const key = uniquePrefix('r');
      const cost = perMinute(120); // 500 ms per request, burst 120
      let allowed = 0;
      for (let i = 0; i < 200 && (await store.take(key, cost)).allowed; i++) allowed++;
      // The loop may take long enough on a slow machine for one or two to refill.
      expect(allowed).toBeGreaterThanOrEqual(120);
      expect(allowed).toBeLessThan(125);
      const refused = await store.take(key, cost);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(500);
      await sleep(refused.retryAfterMs + 30);
      expect((await store.take(key, cost)).allowed).toBe(true);
      expect((await store.take(key, cost)).allowed).toBe(false);
    });

    it('pause refuses for everyone until it ends, and never shortens', async () => {
      const key = uniquePrefix('r');
      await store.pause(key, 300);
      await store.pause(key, 50);
      const r = await store.take(key, perMinute(1000));
      expect(r.allowed).toBe(false);
      expect(r.retryAfterMs).toBeGreaterThan(200);
      await sleep(320);
      expect((await store.take(key, perMinute(1000))).allowed).toBe(true);
    });

    it.each([1e15, 1e20, 1e300, Number.POSITIVE_INFINITY, Number.NaN, -5])(
      'a pause of %d ms is capped at 10 years (or ignored when not a duration): the retry time stays sane',
      async (ms) => {
        const key = uniquePrefix('r');
        await store.pause(key, ms);
        const r = await store.take(key, perMinute(1000));
        expect(Number.isFinite(r.retryAfterMs)).toBe(true);
        expect(r.retryAfterMs).toBeGreaterThanOrEqual(0);
        expect(r.retryAfterMs).toBeLessThanOrEqual(TEN_YEARS_MS);
        if (ms > 1e15) expect(r.allowed).toBe(false);
      },
    );
  });
}

const TEN_YEARS_MS = 10 * 365 * 86_400_000;
