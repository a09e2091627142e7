/**
 * What integration tests use to find their servers: the ones globalSetup started (or the
 * environment named), a random prefix per test, and private servers a test may kill.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

export { startRedisServer, startRedisCluster, startPostgres, freePort } from './servers.js';
export type { ServerHandle, ClusterHandle, PostgresHandle } from './servers.js';

/** Addresses of the shared test servers. */
export interface TestServers {
  /** Standalone Redis, e.g. redis://127.0.0.1:PORT */
  redisUrl: string;
  /** Standalone Redis with requirepass; the URL carries the password. */
  redisAuthUrl: string;
  /** The requirepass password. */
  redisPassword: string;
  /** Seed nodes of the 3-master Cluster. */
  clusterNodes: { host: string; port: number }[];
  /** postgresql://postgres@127.0.0.1:PORT/postgres */
  pgPrimaryUrl: string;
  /** Streaming hot-standby replicas of the primary. */
  pgReplicaUrls: string[];
  /** Ports when the harness started PostgreSQL itself. */
  pgPrimaryPort?: number;
  pgReplicaPort?: number;
}

/** The shared servers (from vitest's provide/inject, falling back to AZS_TEST_* variables). */
export function servers(): TestServers {
  try {
    const s = inject('servers');
    if (s) return s;
  } catch {
    // Outside a vitest worker (a child process script): use the environment.
  }
  const env = process.env;
  if (!env.AZS_TEST_REDIS_URL)
    throw new Error('test servers are not running (no AZS_TEST_REDIS_URL)');
  return {
    redisUrl: env.AZS_TEST_REDIS_URL,
    redisAuthUrl: env.AZS_TEST_REDIS_AUTH_URL ?? '',
    redisPassword: '',
    clusterNodes: (env.AZS_TEST_CLUSTER_NODES ?? '')
      .split(',')
      .filter(Boolean)
      .map((p) => {
        const [host, port] = p.split(':');
        return { host: host ?? '127.0.0.1', port: Number(port) };
      }),
    pgPrimaryUrl: env.AZS_TEST_PG_PRIMARY_URL ?? '',
    pgReplicaUrls: (env.AZS_TEST_PG_REPLICA_URLS ?? '').split(',').filter(Boolean),
  };
}

/** A random key prefix (or schema name) for one test: `azs-<name>-<hex>:`. */
export function uniquePrefix(name = 't'): string {
  return `azs-${name}-${randomBytes(6).toString('hex')}:`;
}

/** Environment for a child process so it finds the same servers. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const s = servers();
  return {
    ...process.env,
    AZS_TEST_REDIS_URL: s.redisUrl,
    AZS_TEST_REDIS_AUTH_URL: s.redisAuthUrl,
    AZS_TEST_CLUSTER_NODES: s.clusterNodes.map((n) => `${n.host}:${n.port}`).join(','),
    AZS_TEST_PG_PRIMARY_URL: s.pgPrimaryUrl,
    AZS_TEST_PG_REPLICA_URLS: s.pgReplicaUrls.join(','),
    ...extra,
  };
}
