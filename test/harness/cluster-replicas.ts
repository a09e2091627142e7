/**
 * A private Redis Cluster of 3 masters + 3 replicas on 127.0.0.1, started on demand by the
 * failover and resharding tests (the shared Cluster has no replicas and must not be disturbed).
 * A small `cluster-node-timeout` makes a killed master's replica take over within seconds.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { type ServerHandle, startRedisServer } from './servers.js';

const run = promisify(execFile);

/** One node as CLUSTER NODES reports it. */
export interface ClusterNodeState {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** Node id of the master (replicas only). */
  masterId: string | undefined;
  /** Slot ranges `[first, last]` served (masters only). */
  slots: [number, number][];
  failed: boolean;
}

/** The running cluster. */
export interface ReplicatedCluster {
  /** Seed nodes (every node, masters and replicas). */
  nodes: { host: string; port: number }[];
  /** Milliseconds of `cluster-node-timeout`. */
  nodeTimeoutMs: number;
  /** What a live node says about the cluster now. */
  state(): Promise<ClusterNodeState[]>;
  /** The master serving `slot` now. */
  masterOf(slot: number): Promise<ClusterNodeState>;
  /** SIGKILLs the node on `port`. */
  kill(port: number): Promise<void>;
  /** Waits until every live node reports cluster_state:ok with all slots on live masters. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /**
   * Moves `slot` to the master on `toPort` the way `redis-cli --cluster reshard` does: SETSLOT
   * IMPORTING/MIGRATING, MIGRATE ... KEYS in batches of `batch` keys with `pauseMs` between
   * them (so traffic meets the slot half moved: ASK and TRYAGAIN), then SETSLOT NODE on every
   * master. Returns the keys moved.
   */
  migrateSlot(
    slot: number,
    toPort: number,
    options?: { batch?: number; pauseMs?: number },
  ): Promise<number>;
  /** A plain client on one node (closed by `stop()`). */
  client(port: number): Redis;
  stop(): Promise<void>;
}

/**
 * Starts 3 masters + 3 replicas, plus `extraReplicas` more replicas of the first master (so
 * that after its failover the new master still has a replica: what `durability` needs), and
 * waits until every replica is in sync.
 */
export async function startReplicatedCluster(
  nodeTimeoutMs = 1000,
  extraReplicas = 0,
): Promise<ReplicatedCluster> {
  const servers = await Promise.all(
    Array.from({ length: 6 + extraReplicas }, () =>
      startRedisServer({
        cluster: true,
        args: [
          '--cluster-node-timeout',
          String(nodeTimeoutMs),
          // Let a replica take over however long it was disconnected (a fresh test cluster).
          '--cluster-replica-validity-factor',
          '0',
        ],
      }),
    ),
  );
  // Servers that are part of the cluster (the extra replicas join after it is created).
  let members = servers.slice(0, 6);
  const byPort = new Map<number, ServerHandle>(servers.map((s) => [s.port, s]));
  const dead = new Set<number>();
  const clients: Redis[] = [];
  const client = (port: number): Redis => {
    const c = new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const addrs = servers.slice(0, 6).map((s) => `127.0.0.1:${s.port}`);
  await run(
    'redis-cli',
    ['--cluster', 'create', ...addrs, '--cluster-replicas', '1', '--cluster-yes'],
    { timeout: 60_000 },
  );

  const state = async (): Promise<ClusterNodeState[]> => {
    for (const s of members) {
      if (dead.has(s.port)) continue;
      const c = new Redis({ host: '127.0.0.1', port: s.port, maxRetriesPerRequest: 0 });
      c.on('error', () => {});
      try {
        return parseNodes(String(await c.call('CLUSTER', 'NODES')));
      } catch {
        // This node is not answering: ask the next one.
      } finally {
        c.disconnect();
      }
    }
    throw new Error('no cluster node answers');
  };

  const waitHealthy = async (timeoutMs = 30_000): Promise<void> => {
    const end = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < end) {
      try {
        let ok = true;
        for (const s of members) {
          if (dead.has(s.port)) continue;
          const c = new Redis({ host: '127.0.0.1', port: s.port, maxRetriesPerRequest: 0 });
          c.on('error', () => {});
          try {
            const info = String(await c.call('CLUSTER', 'INFO'));
            last = `${s.port}: ${info.split('\r\n').slice(0, 3).join(' ')}`;
            if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) {
              ok = false;
            }
            const repl = String(await c.call('INFO', 'replication'));
            if (repl.includes('role:slave') && !repl.includes('master_link_status:up')) {
              // A replica of a dead master keeps saying down; only live pairs must be linked.
              const masterPort = Number(/master_port:(\d+)/.exec(repl)?.[1]);
              if (!dead.has(masterPort)) ok = false;
            }
          } finally {
            c.disconnect();
          }
          if (!ok) break;
        }
        if (ok) {
          const nodes = await state();
          if (nodes.filter((n) => n.role === 'master' && !n.failed && n.slots.length).length >= 3)
            return;
        }
      } catch (e) {
        last = String(e);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`cluster not healthy after ${timeoutMs} ms (${last})`);
  };

  await waitHealthy(60_000);
  if (extraReplicas > 0) {
    const first = (await state()).find(
      (n) => n.role === 'master' && n.slots.length,
    ) as ClusterNodeState;
    for (const s of servers.slice(6)) {
      await run(
        'redis-cli',
        [
          '--cluster',
          'add-node',
          `127.0.0.1:${s.port}`,
          `127.0.0.1:${first.port}`,
          '--cluster-slave',
          '--cluster-master-id',
          first.id,
        ],
        { timeout: 60_000 },
      );
    }
    members = servers;
    const wanted = 1 + extraReplicas;
    const end = Date.now() + 60_000;
    for (;;) {
      const c = client(first.port);
      const repl = String(await c.call('INFO', 'replication'));
      c.disconnect();
      const online = repl.split('\n').filter((l) => /^slave\d+:.*state=online/.test(l)).length;
      if (online >= wanted) break;
      if (Date.now() > end) throw new Error(`extra replicas not online: ${repl}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitHealthy(60_000);
  }
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    nodeTimeoutMs,
    state,
    masterOf: async (slot) => {
      const nodes = await state();
      const m = nodes.find(
        (n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b),
      );
      if (!m) throw new Error(`no master serves slot ${slot}`);
      return m;
    },
    kill: async (port) => {
      dead.add(port);
      await byPort.get(port)?.kill('SIGKILL');
    },
    waitHealthy,
    client,
    migrateSlot: async (slot, toPort, options = {}) => {
      const batch = options.batch ?? 10;
      const pauseMs = options.pauseMs ?? 20;
      const nodes = await state();
      const from = nodes.find(
        (n) => n.role === 'master' && n.slots.some(([a, b]) => slot >= a && slot <= b),
      );
      const to = nodes.find((n) => n.port === toPort);
      if (!from || !to) throw new Error(`slot ${slot} or node ${toPort} not found`);
      if (from.id === to.id) return 0;
      const src = client(from.port);
      const dst = client(to.port);
      await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
      let moved = 0;
      for (;;) {
        const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, batch)) as string[];
        if (keys.length === 0) break;
        await src.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
        moved += keys.length;
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
      // The target first, as redis-cli does: it owns the slot before the source lets go.
      await dst.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      await src.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      for (const n of nodes) {
        if (n.role !== 'master' || n.id === from.id || n.id === to.id || dead.has(n.port)) continue;
        const c = client(n.port);
        await c.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id).catch(() => undefined);
      }
      return moved;
    },
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

function parseNodes(text: string): ClusterNodeState[] {
  const out: ClusterNodeState[] = [];
  for (const line of text.trim().split('\n')) {
    const parts = line.trim().split(' ');
    const [id, addr, flags, master] = parts;
    if (!id || !addr || !flags) continue;
    const port = Number(addr.split('@')[0]?.split(':')[1]);
    const slots: [number, number][] = [];
    for (const p of parts.slice(8)) {
      if (p.startsWith('[')) continue; // a slot being imported or migrated
      const [a, b] = p.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    out.push({
      id,
      port,
      role: flags.includes('master') ? 'master' : 'replica',
      masterId: master && master !== '-' ? master : undefined,
      slots,
      failed: flags.split(',').includes('fail'),
    });
  }
  return out;
}
