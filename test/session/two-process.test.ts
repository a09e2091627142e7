/**
 * Proof of the issue: two OS processes append to one session at the same time and nothing is
 * lost or duplicated, on standalone Redis and on the Cluster.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DistributedSessionManager, newSessionId } from '../../src/session/index.js';
import { childEnv, servers, uniquePrefix } from '../harness/env.js';

const WORKER = fileURLToPath(new URL('./fixtures/append-worker.ts', import.meta.url));

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  done: Promise<{ lengths: number[] }>;
}

function startWorker(args: string[]): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], {
    env: childEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('ready\n')) onReady();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<{ lengths: number[] }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker timed out; stderr: ${err}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`worker exited ${code}; stderr: ${err}`));
      else resolve(JSON.parse(line) as { lengths: number[] });
    });
  });
  return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
}

const targets = [
  { name: 'standalone', redis: () => servers().redisUrl },
  { name: 'cluster', redis: () => ({ nodes: servers().clusterNodes }) },
] as const;

describe.each(targets)('two OS processes on Redis $name', ({ name, redis }) => {
  const managers: DistributedSessionManager[] = [];
  afterAll(async () => {
    await Promise.all(managers.map((m) => m.close()));
  });

  async function race(mode: 'append' | 'batch' | 'update' | 'naive', count: number) {
    const prefix = uniquePrefix('session2p');
    const id = newSessionId();
    const a = startWorker([name, prefix, id, 'A', String(count), mode]);
    const b = startWorker([name, prefix, id, 'B', String(count), mode]);
    await Promise.all([a.ready, b.ready]);
    a.child.stdin?.write('go\n');
    b.child.stdin?.write('go\n');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    const reader = new DistributedSessionManager({ redis: redis(), prefix });
    managers.push(reader);
    return { session: await reader.getSession(id), ra, rb };
  }

  it('500 + 500 concurrent appendMessage calls: all 1000 kept, none duplicated', async () => {
    const { session, ra, rb } = await race('append', 500);
    const contents = session.messages.map((m) => m.content as string);
    expect(contents).toHaveLength(1000);
    expect(new Set(contents).size).toBe(1000);
    for (const tag of ['A', 'B']) {
      expect(contents.filter((c) => c.startsWith(`${tag}-`)).sort()).toEqual(
        Array.from({ length: 500 }, (_, i) => `${tag}-${i}`).sort(),
      );
    }
    // Every append observed a distinct length: each one ran alone on the server.
    const lengths = [...ra.lengths, ...rb.lengths].sort((x, y) => x - y);
    expect(lengths).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
  });

  it('250 + 250 concurrent two-message appendMessages batches: all kept, each pair adjacent', async () => {
    const { session, ra, rb } = await race('batch', 250);
    const contents = session.messages.map((m) => m.content as string);
    expect(contents).toHaveLength(1000);
    expect(new Set(contents).size).toBe(1000);
    for (let j = 0; j < 1000; j += 2) {
      expect(contents[j]?.endsWith('-q')).toBe(true);
      expect(contents[j + 1]).toBe(`${contents[j]?.slice(0, -2)}-a`);
    }
    const lengths = [...ra.lengths, ...rb.lengths].sort((x, y) => x - y);
    expect(lengths).toEqual(Array.from({ length: 500 }, (_, i) => 2 * (i + 1)));
  });

  it('control: the seed pattern (getSession + saveSession) loses messages under the same load', async () => {
    const { session } = await race('naive', 500);
    expect(session.messages.length).toBeLessThan(1000);
  });

  it('100 + 100 concurrent updateSession calls: every update applied once', async () => {
    const { session } = await race('update', 100);
    expect(session.A).toBe(100);
    expect(session.B).toBe(100);
    const contents = session.messages.map((m) => m.content as string);
    expect(contents).toHaveLength(200);
    expect(new Set(contents).size).toBe(200);
  });
});
