/**
 * A master of a Redis Cluster with replicas is SIGKILLed under continuous traffic over the
 * modules (task submits with a worker claiming, session appends, spend increments, cache
 * writes), all keyed on that master; its replica takes over. Reported per module: the longest
 * time without an acknowledged write, and acknowledged writes lost, without durability and with
 * `durability: { replicas: 1 }` (which must lose none).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ReplicatedCluster, startReplicatedCluster } from '../harness/cluster-replicas.js';
import { Traffic } from './traffic.js';

let cluster: ReplicatedCluster;

beforeAll(async () => {
  // The first master gets a second replica: after its failover the promoted replica still has
  // one, so `durability: { replicas: 1 }` can be met again.
  cluster = await startReplicatedCluster(1000, 1);
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
}, 30_000);

async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('every module writes through a master failover; durability loses no acknowledged write', async () => {
  const nodes = await cluster.state();
  const victim = nodes.find(
    (n) => n.role === 'master' && nodes.filter((r) => r.masterId === n.id).length === 2,
  ) as {
    port: number;
    id: string;
    slots: [number, number][];
  };
  const inVictim = (slot: number) => victim.slots.some(([a, b]) => slot >= a && slot <= b);
  const plain = new Traffic(cluster.nodes, 'p', undefined);
  const durable = new Traffic(cluster.nodes, 'd', { replicas: 1, timeout: 1 });
  try {
    await plain.start(inVictim);
    await durable.start(inVictim);
    await waitFor('traffic', () => plain.ackedCount() >= 30 && durable.ackedCount() >= 30);
    const killedAt = performance.now();
    await cluster.kill(victim.port);
    // The replica is promoted after cluster-node-timeout; traffic resumes on it.
    await waitFor(
      'the replica promoted',
      async () =>
        (await cluster.state().catch(() => [])).some(
          (n) => n.role === 'master' && n.id !== victim.id && n.slots.some(([a]) => inVictim(a)),
        ),
      30_000,
    );
    const promotedAt = performance.now();
    const p0 = plain.ackedCount();
    const d0 = durable.ackedCount();
    await waitFor(
      'traffic after the failover',
      () => plain.ackedCount() >= p0 + 30 && durable.ackedCount() >= d0 + 30,
      30_000,
    ).catch((e) => {
      throw new Error(`${e.message}: plain ${plain.snapshot()} | durable ${durable.snapshot()}`);
    });
    const reportPlain = await plain.stop();
    const reportDurable = await durable.stop();
    console.log(
      `[cluster failover] promotion ${((promotedAt - killedAt) / 1000).toFixed(2)} s after SIGKILL (cluster-node-timeout ${cluster.nodeTimeoutMs} ms)\n` +
        `without durability:\n${reportPlain.map((r) => `  ${JSON.stringify(r)}`).join('\n')}\n` +
        `durability { replicas: 1 }:\n${reportDurable.map((r) => `  ${JSON.stringify(r)}`).join('\n')}`,
    );
    for (const r of reportDurable) expect(r.lost, r.module).toBe(0);
    // Every module came back: acknowledged writes after the failover, and a finite window.
    for (const r of [...reportPlain, ...reportDurable]) {
      expect(r.longestGap, r.module).toBeLessThan(20);
    }
    // The worker kept claiming (its blocking read moved to the new master).
    const c0 = plain.completed;
    await plain.submitOne();
    await waitFor(
      'the worker completes a task after the failover',
      () => plain.completed > c0,
      20_000,
    );
  } finally {
    await plain.close();
    await durable.close();
  }
}, 120_000);
