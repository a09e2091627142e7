/**
 * Proof of the issue: a breaker with `redis` opened by failures on one OS process is seen open
 * by a second process within a second, and only one of them runs the half-open trial.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { childEnv, servers, uniquePrefix } from '../harness/env.js';

const WORKER = fileURLToPath(new URL('./fixtures/breaker-worker.ts', import.meta.url));

type Msg = Record<string, unknown> & { ev: string };

class Proc {
  readonly child: ChildProcess;
  private readonly messages: Msg[] = [];
  private readonly waiters: { ev: string; resolve: (m: Msg) => void }[] = [];
  private err = '';
  constructor(args: string[]) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
      env: childEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let buf = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
        if (!line.startsWith('{')) continue;
        const m = JSON.parse(line) as Msg;
        const w = this.waiters.findIndex((x) => x.ev === m.ev);
        if (w >= 0) this.waiters.splice(w, 1)[0]?.resolve(m);
        else this.messages.push(m);
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.err += d.toString();
    });
  }
  next(ev: string, ms = 60_000): Promise<Msg> {
    const i = this.messages.findIndex((m) => m.ev === ev);
    if (i >= 0) return Promise.resolve(this.messages.splice(i, 1)[0] as Msg);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no ${ev} within ${ms} ms; stderr: ${this.err}`)),
        ms,
      );
      this.waiters.push({
        ev,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }
  send(cmd: string): void {
    this.child.stdin?.write(`${cmd}\n`);
  }
  stop(): void {
    this.send('exit');
    setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
  }
}

const targets = [
  { mode: 'standalone', client: () => new Redis(servers().redisUrl) },
  { mode: 'cluster', client: () => new Cluster(servers().clusterNodes) },
] as const;

describe.each(targets)(
  'shared circuit breaker across 2 OS processes on Redis $mode',
  ({ mode, client }) => {
    const redis = client();
    afterAll(() => redis.disconnect());

    // Two tsx children start first: on a loaded machine that alone can take over 20 s.
    it('opens on the second process within 1 s; one process runs the half-open trial; both close', async () => {
      const name = uniquePrefix('cb');
      const counter = uniquePrefix('trials');
      const a = new Proc([mode, name, counter]);
      const b = new Proc([mode, name, counter]);
      try {
        await Promise.all([a.next('ready'), b.next('ready')]);
        a.send('fail');
        const openedA = await a.next('open');
        const openedB = await b.next('open');
        // B itself never failed; it learned from the shared state.
        expect(Number(openedB.at) - Number(openedA.at)).toBeLessThan(1000);
        b.send('call');
        expect(await b.next('call')).toMatchObject({ ok: false, code: 'AZS_CIRCUIT_OPEN' });
        expect(Number(await redis.get(counter))).toBe(0);

        // After recoveryTimeout (1.5 s) both try at once: one trial in the fleet.
        await new Promise((r) => setTimeout(r, 1700));
        a.send('call');
        b.send('call');
        const [ra, rb] = await Promise.all([a.next('call'), b.next('call')]);
        expect([ra.ok, rb.ok].filter(Boolean)).toHaveLength(1);
        expect([ra, rb].find((r) => !r.ok)).toMatchObject({ code: 'AZS_CIRCUIT_OPEN' });
        expect(Number(await redis.get(counter))).toBe(1);

        // The successful trial closed it for both.
        // The other process learns it from the shared state: waited for (a Node 20 run under load
        // read 'half-open' once, right after the trial's reply), not read once.
        for (const p of [a, b]) {
          let state: unknown;
          for (let i = 0; i < 50 && state !== 'closed'; i++) {
            if (i > 0) await new Promise((r) => setTimeout(r, 200));
            p.send('state');
            state = (await p.next('state')).state;
          }
          expect(state).toBe('closed');
        }
        b.send('call');
        expect((await b.next('call')).ok).toBe(true);
      } finally {
        a.stop();
        b.stop();
        await redis.del(counter);
      }
    }, 180_000);
  },
);
