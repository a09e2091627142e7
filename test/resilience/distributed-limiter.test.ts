/**
 * Proof of the issue: 4 OS processes share one ConcurrencyLimiter of 5 on Redis. Every call
 * records itself in Redis (one script: in-flight count per process, fleet maximum, timeline), so
 * the maximum across processes is measured, not assumed. A variant SIGKILLs a holder mid-call.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { childEnv, servers, uniquePrefix } from '../harness/env.js';

const WORKER = fileURLToPath(new URL('./fixtures/limiter-worker.ts', import.meta.url));

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  holding: Promise<void>;
  exit: Promise<number | null>;
  stderr: () => string;
}

function startWorker(args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    env: childEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let onReady = () => {};
  let onHolding = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  const holding = new Promise<void>((r) => {
    onHolding = r;
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) onReady();
    if (out.includes('holding\n')) onHolding();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return {
    child,
    ready: Promise.race([
      ready,
      exit.then((c) => Promise.reject(new Error(`worker exited ${c}: ${err}`))),
    ]),
    holding,
    exit,
    stderr: () => err,
  };
}

interface Entry {
  atUs: number;
  total: number;
  label: string;
}

function parseLog(lines: string[]): Entry[] {
  return lines.map((l) => {
    const [at, total, label] = l.split(':');
    return { atUs: Number(at), total: Number(total), label: label ?? '' };
  });
}

const targets = [
  { name: 'standalone', mode: 'standalone', client: () => new Redis(servers().redisUrl) },
  { name: 'cluster', mode: 'cluster', client: () => new Cluster(servers().clusterNodes) },
] as const;

describe.each(targets)(
  'distributed ConcurrencyLimiter across OS processes on Redis $name',
  ({ mode, client }) => {
    const redis = client();
    afterAll(() => redis.disconnect());

    it('4 processes, limit 5: the fleet-wide maximum in flight is exactly 5', async () => {
      const key = uniquePrefix('lim');
      const tag = uniquePrefix('rec');
      const workers = ['A', 'B', 'C', 'D'].map((label) =>
        startWorker([mode, key, tag, label, '8', '100', '30']),
      );
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin?.write('go\n');
      const codes = await Promise.all(workers.map((w) => w.exit));
      expect(codes, workers.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0, 0]);

      expect(Number(await redis.get(`{${tag}}:done`))).toBe(32);
      expect(Number(await redis.get(`{${tag}}:max`))).toBe(5);
      const log = parseLog(await redis.lrange(`{${tag}}:log`, 0, -1));
      expect(log).toHaveLength(32);
      expect(Math.max(...log.map((e) => e.total))).toBe(5);
      // Calls from every process took part, and the limit was full more than once.
      expect(new Set(log.map((e) => e.label)).size).toBe(4);
      expect(log.filter((e) => e.total === 5).length).toBeGreaterThan(1);
      // Nothing left in flight, no lease left behind.
      const inflight = await redis.hvals(`{${tag}}:inflight`);
      expect(inflight.map(Number).reduce((a, b) => a + b, 0)).toBe(0);
      expect(await redis.zcard(`azs:limit:{${key}}:leases`)).toBe(0);
    });

    it('a holder killed with SIGKILL mid-call frees its slots within leaseTtl; the rest completes', async () => {
      const key = uniquePrefix('lim');
      const tag = uniquePrefix('rec');
      const leaseTtl = 2;
      // The victim holds 2 of the 5 slots with calls that would run for a minute.
      const victim = startWorker([mode, key, tag, 'V', '2', '60000', String(leaseTtl)]);
      await victim.ready;
      victim.child.stdin?.write('go\n');
      await victim.holding;
      const until = Date.now() + 10_000;
      while (Number(await redis.hget(`{${tag}}:inflight`, 'V')) < 2 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(Number(await redis.hget(`{${tag}}:inflight`, 'V'))).toBe(2);

      const others = ['A', 'B', 'C'].map((label) =>
        startWorker([mode, key, tag, label, '20', '200', String(leaseTtl)]),
      );
      await Promise.all(others.map((w) => w.ready));
      for (const w of others) w.child.stdin?.write('go\n');
      await Promise.all(others.map((w) => w.holding));
      await new Promise((r) => setTimeout(r, 300));

      victim.child.kill('SIGKILL');
      expect(await victim.exit).toBe(null);
      // The dead process's calls are not running any more: take them out of the live count, and
      // read the clock in the same script so no recorded call falls between the two. Its leases
      // still hold its 2 slots, so no call can have started in their place yet.
      const t = (await redis.eval(
        "redis.call('HDEL', KEYS[1], 'V') return redis.call('TIME')",
        1,
        `{${tag}}:inflight`,
      )) as [string, string];
      const killedAt = Number(t[0]) * 1_000_000 + Number(t[1]);

      const codes = await Promise.all(others.map((w) => w.exit));
      expect(codes, others.map((w) => w.stderr()).join('\n')).toEqual([0, 0, 0]);
      expect(Number(await redis.get(`{${tag}}:done`))).toBe(60);

      const log = parseLog(await redis.lrange(`{${tag}}:log`, 0, -1));
      const before = log.filter((e) => e.atUs < killedAt);
      const after = log.filter((e) => e.atUs >= killedAt);
      // While the victim lived, the others shared the 3 remaining slots.
      expect(Math.max(...before.map((e) => e.total))).toBe(5);
      expect(
        Math.max(...before.filter((e) => e.label !== 'V').map((e) => e.total)),
      ).toBeLessThanOrEqual(5);
      // The first call that used a reclaimed slot (4+ live calls without the victim).
      const reclaimed = after.find((e) => e.total >= 4);
      expect(reclaimed).toBeDefined();
      const seconds = ((reclaimed as Entry).atUs - killedAt) / 1e6;
      // Not before the lease could have run out (last renewal <= leaseTtl/3 before the kill) ...
      expect(seconds).toBeGreaterThan((leaseTtl * 2) / 3 - 0.1);
      // ... and within leaseTtl (plus one poll interval and scheduling slack).
      expect(seconds).toBeLessThanOrEqual(leaseTtl + 0.5);
      // Never more than 5 live calls, before or after.
      expect(Number(await redis.get(`{${tag}}:max`))).toBe(5);
      expect(Math.max(...after.map((e) => e.total))).toBe(5);
    });
  },
);
