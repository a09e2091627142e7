/**
 * A Sentinel failover under continuous traffic: 1 primary + 2 replicas + 3 redis-sentinel, the
 * primary SIGKILLed while task submits, session appends, spend increments and cache writes run,
 * Sentinel promotes a replica, the clients follow. Each module runs twice side by side: without
 * durability and with `durability: { replicas: 1 }`. Afterwards every acknowledged write is
 * looked up on the new primary. Reports, per module: the unavailability window (kill to the
 * first acknowledged write after it) and the acknowledged writes lost; asserts 0 lost with
 * durability. The figures are printed and quoted in docs/operations.md.
 */
import { afterAll, expect, it } from 'vitest';
import { DistributedCache } from '../../src/cache/index.js';
import { isAzscaleError } from '../../src/core/index.js';
import type { DurabilityOptions } from '../../src/core/durability.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { TaskQueue } from '../../src/worker/index.js';
import { type SentinelGroup, startSentinelGroup } from '../harness/sentinel.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Spend writes carry one category each (to find each one afterwards); an hour keeps 1000. */
const MAX_SPEND_WRITES = 950;
const SESSIONS = 8;

interface Loop {
  module: 'tasks' | 'sessions' | 'spend' | 'cache';
  mode: 'off' | 'replicas=1';
  /** Sends write number `i`; resolves when it is acknowledged. */
  write(i: number): Promise<void>;
  /** Which of `ids` are on the current primary. */
  check(ids: number[]): Promise<Set<number>>;
  /** Pause between writes (ms), to keep a loaded 2-core machine breathing. */
  paceMs: number;
  maxWrites?: number;
  acked: number[];
  ackedAt: number[];
  failed: number;
  untyped: unknown[];
  codes: Record<string, number>;
  lastError?: string;
  /** The ioredis status of the module's main connection, for the report of a stuck run. */
  status?: () => string | undefined;
}

let group: SentinelGroup | undefined;
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await group?.stop();
}, 30_000);

async function until(
  what: string,
  check: () => boolean,
  timeoutMs: number,
  state: () => unknown,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(state())}`,
      );
    }
    await sleep(50);
  }
}

it('Sentinel promotes a replica under traffic; no write acknowledged with durability is lost', async () => {
  group = await startSentinelGroup({ replicas: 2, sentinels: 3 });
  const redis = { sentinels: group.sentinels, name: group.name };
  const fixedNow = Date.now();
  const loops: Loop[] = [];

  const make = (mode: Loop['mode'], durability: DurabilityOptions | undefined) => {
    const d = durability ? { durability } : {};
    const tag = mode === 'off' ? 'off' : 'dur';
    const queue = new TaskQueue({ redis, name: `fo-${tag}`, ...d });
    const sessions = new DistributedSessionManager({ redis, prefix: `fo-${tag}:`, ...d });
    const spend = new CostOptimizer({ redis, name: `fo-${tag}`, now: () => fixedNow, ...d });
    closers.push(
      () => queue.close(),
      () => sessions.close(),
      () => spend.close(),
    );
    const base = { mode, acked: [], ackedAt: [], failed: 0, untyped: [], codes: {} };
    loops.push({
      ...base,
      module: 'tasks',
      paceMs: 5,
      status: () =>
        (queue as unknown as { conn?: { client?: { status: string } } }).conn?.client?.status,
      write: async (i) => {
        await queue.submitTask({ i }, { taskId: `t${i}` });
      },
      check: async (ids) => {
        const q = new TaskQueue({ redis, name: `fo-${tag}` });
        try {
          const found = new Set<number>();
          for (let k = 0; k < ids.length; k += 200) {
            const part = ids.slice(k, k + 200);
            const got = await Promise.all(part.map((i) => q.getTask(`t${i}`)));
            for (const [j, t] of got.entries()) if (t) found.add(part[j] as number);
          }
          return found;
        } finally {
          await q.close();
        }
      },
    });
    loops.push({
      ...base,
      acked: [],
      ackedAt: [],
      codes: {},
      untyped: [],
      module: 'sessions',
      paceMs: 5,
      status: () =>
        (sessions.store as unknown as { connection?: { client?: { status: string } } }).connection
          ?.client?.status,
      write: async (i) => {
        await sessions.appendMessage(`s${i % SESSIONS}`, { role: 'user', content: `m${i}` });
      },
      check: async () => {
        const m = new DistributedSessionManager({ redis, prefix: `fo-${tag}:` });
        try {
          const found = new Set<number>();
          for (let s = 0; s < SESSIONS; s++) {
            for (const msg of (await m.getSession(`s${s}`)).messages) {
              found.add(Number(String((msg as { content: string }).content).slice(1)));
            }
          }
          return found;
        } finally {
          await m.close();
        }
      },
    });
    loops.push({
      ...base,
      acked: [],
      ackedAt: [],
      codes: {},
      untyped: [],
      module: 'spend',
      paceMs: 20,
      maxWrites: MAX_SPEND_WRITES,
      write: async (i) => {
        await spend.recordSpend(1, { category: `w${i}` });
      },
      check: async () => {
        const o = new CostOptimizer({ redis, name: `fo-${tag}`, now: () => fixedNow });
        try {
          const cats = await o.spendByCategory();
          return new Set(Object.keys(cats).map((c) => Number(c.slice(1))));
        } finally {
          await o.close();
        }
      },
    });
  };
  make('off', undefined);
  make('replicas=1', { replicas: 1, timeout: 2 });
  // The cache acknowledges writes without durability (a cache may lose entries): measured only.
  const cache = new DistributedCache({
    redis,
    prefix: 'fo-cache:',
    local: false,
    onBackendError: 'throw',
  });
  closers.push(() => cache.close());
  loops.push({
    module: 'cache',
    mode: 'off',
    paceMs: 5,
    acked: [],
    ackedAt: [],
    failed: 0,
    untyped: [],
    codes: {},
    write: async (i) => {
      await cache.set(`k${i}`, String(i));
    },
    check: async (ids) => {
      const c = new DistributedCache({ redis, prefix: 'fo-cache:', local: false });
      try {
        const found = new Set<number>();
        for (let k = 0; k < ids.length; k += 200) {
          const part = ids.slice(k, k + 200);
          const got = await Promise.all(part.map((i) => c.get(`k${i}`)));
          for (const [j, v] of got.entries())
            if (v === String(part[j])) found.add(part[j] as number);
        }
        return found;
      } finally {
        await c.close();
      }
    },
  });

  let stopped = false;
  const running = loops.map(async (l) => {
    for (let i = 0; !stopped; i++) {
      if (l.maxWrites !== undefined && i >= l.maxWrites) {
        await sleep(50);
        continue;
      }
      try {
        await l.write(i);
        l.acked.push(i);
        l.ackedAt.push(Date.now());
      } catch (e) {
        l.failed++;
        if (!isAzscaleError(e)) l.untyped.push(e);
        const code = isAzscaleError(e) ? e.code : String((e as Error)?.name);
        l.codes[code] = (l.codes[code] ?? 0) + 1;
        l.lastError = String((e as Error)?.message).slice(0, 200);
        await sleep(25);
      }
      await sleep(l.paceMs);
    }
  });

  try {
    const state = () =>
      loops.map((l) => ({
        m: l.module,
        d: l.mode,
        ok: l.acked.length,
        codes: l.codes,
        last: l.lastError,
        status: l.status?.(),
      }));
    await until(
      'traffic on every module',
      () => loops.every((l) => l.acked.length >= 20),
      30_000,
      state,
    );
    const oldPort = await group.primaryPort();
    const killedAt = Date.now();
    await group.server(oldPort).kill('SIGKILL');
    const newPort = await group.waitForNewPrimary(oldPort, 45_000);
    const promotedAt = Date.now();
    expect(newPort).not.toBe(oldPort);
    // Every module must resume: 20 acknowledged writes after the promotion was seen.
    await until(
      'every module to resume after the failover',
      () => loops.every((l) => l.ackedAt.filter((t) => t > promotedAt).length >= 20),
      30_000,
      state,
    );
    stopped = true;
    await Promise.all(running);

    const report: Record<string, unknown>[] = [];
    for (const l of loops) {
      const found = await l.check(l.acked);
      const lost = l.acked.filter((i) => !found.has(i));
      // The outage is the longest stretch without an acknowledged write.
      let windowMs = 0;
      for (let k = 1; k < l.ackedAt.length; k++) {
        windowMs = Math.max(windowMs, (l.ackedAt[k] as number) - (l.ackedAt[k - 1] as number));
      }
      const before = new Set(l.acked.filter((_, k) => (l.ackedAt[k] as number) <= killedAt));
      report.push({
        module: l.module,
        durability: l.mode,
        acknowledged: l.acked.length,
        failedCalls: l.failed,
        windowMs,
        lost: lost.length,
        lostAckedBeforeKill: lost.filter((i) => before.has(i)).length,
        errors: l.codes,
      });
      (l as Loop & { lost: number }).lost = lost.length;
    }
    // The figures docs/operations.md quotes.
    console.log(
      `sentinel failover: promotion seen ${promotedAt - killedAt} ms after the kill\n${JSON.stringify(report, null, 1)}`,
    );
    for (const l of loops) {
      // Every failure the callers saw was a typed azscale error.
      expect(l.untyped).toEqual([]);
      if (l.mode === 'replicas=1')
        expect({ [l.module]: (l as Loop & { lost: number }).lost }).toEqual({ [l.module]: 0 });
    }
  } finally {
    stopped = true;
    await Promise.all(running);
  }
}, 150_000);
