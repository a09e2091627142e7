/**
 * Live resharding under traffic: the slots of a queue's, a session's, a spend total's and a
 * cache's keys are moved from one master to another (SETSLOT IMPORTING/MIGRATING, MIGRATE ...
 * KEYS in small batches, SETSLOT NODE) while every module keeps writing. The modules meet MOVED,
 * ASK and, for their multi-key scripts, TRYAGAIN: no error may reach the caller, and no
 * acknowledged write may be lost.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keySlot } from '../../src/cache/slot.js';
import { type ReplicatedCluster, startReplicatedCluster } from '../harness/cluster-replicas.js';
import { Traffic, keysWith } from './traffic.js';

let cluster: ReplicatedCluster;

beforeAll(async () => {
  cluster = await startReplicatedCluster(1000);
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

it('moving the modules’ slots to another master under traffic: no error, no lost write', async () => {
  const masters = (await cluster.state()).filter((n) => n.role === 'master');
  const [source, target] = masters as [(typeof masters)[0], (typeof masters)[0]];
  const inSource = (slot: number) => source.slots.some(([a, b]) => slot >= a && slot <= b);
  const traffic = new Traffic(cluster.nodes, 'm', undefined);
  try {
    await traffic.start(inSource);
    await waitFor('traffic', () => traffic.ackedCount() >= 30);
    const slots = [...new Set((await keysWith(cluster.nodes, 'm')).map((k) => keySlot(k)))].filter(
      inSource,
    );
    expect(slots.length).toBeGreaterThanOrEqual(4);
    let moved = 0;
    for (const slot of slots) {
      moved += await cluster.migrateSlot(slot, target.port, { batch: 20, pauseMs: 10 });
    }
    for (const slot of slots) expect((await cluster.masterOf(slot)).port).toBe(target.port);
    const n0 = traffic.ackedCount();
    await waitFor('traffic after the move', () => traffic.ackedCount() >= n0 + 30);
    const report = await traffic.stop();
    console.log(
      `[slot migration] ${slots.length} slots, ${moved} keys moved under traffic\n${report
        .map((r) => `  ${JSON.stringify(r)}`)
        .join('\n')}`,
    );
    for (const r of report) {
      expect(r.errors, r.module).toEqual({});
      expect(r.lost, r.module).toBe(0);
    }
  } finally {
    await traffic.close();
  }
}, 120_000);
