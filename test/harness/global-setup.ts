/**
 * vitest globalSetup: starts every server the integration tests need (unless the environment
 * names running ones), hands their addresses to the tests, and stops them afterwards.
 *
 * Environment (all optional): REDIS_URL, REDIS_CLUSTER_NODES ("host:port,host:port"),
 * PG_PRIMARY_URL, PG_REPLICA_URLS (comma-separated).
 */
import type { TestProject } from 'vitest/node';
import {
  type ClusterHandle,
  type PostgresHandle,
  type ServerHandle,
  startPostgres,
  startRedisCluster,
  startRedisServer,
} from './servers.js';
import type { TestServers } from './env.js';

const AUTH_PASSWORD = 'azs-test-s3cret-pw';

export default async function setup(project: TestProject) {
  const started: { stop(): Promise<void> }[] = [];
  const t0 = Date.now();
  const env = process.env;
  const tasks: Promise<void>[] = [];
  const servers: Partial<TestServers> = {};
  const descr: string[] = [];

  const keep = <T extends { stop(): Promise<void> }>(h: T): T => {
    started.push(h);
    return h;
  };

  if (env.REDIS_URL) {
    servers.redisUrl = env.REDIS_URL;
    descr.push(`redis standalone: ${redact(env.REDIS_URL)} (from REDIS_URL)`);
  } else {
    tasks.push(
      startRedisServer().then((h: ServerHandle) => {
        keep(h);
        servers.redisUrl = h.url;
        descr.push(`redis standalone: ${h.url} (started)`);
      }),
    );
  }
  tasks.push(
    startRedisServer({ password: AUTH_PASSWORD }).then((h) => {
      keep(h);
      servers.redisAuthUrl = h.url;
      servers.redisPassword = AUTH_PASSWORD;
      descr.push(`redis requirepass: 127.0.0.1:${h.port} (started)`);
    }),
  );
  if (env.REDIS_CLUSTER_NODES) {
    servers.clusterNodes = env.REDIS_CLUSTER_NODES.split(',').map((p) => {
      const [host, port] = p.trim().split(':');
      return { host: host ?? '127.0.0.1', port: Number(port) };
    });
    descr.push(`redis cluster: ${env.REDIS_CLUSTER_NODES} (from REDIS_CLUSTER_NODES)`);
  } else {
    tasks.push(
      startRedisCluster(3).then((h: ClusterHandle) => {
        keep(h);
        servers.clusterNodes = h.nodes;
        descr.push(`redis cluster: 3 masters ${h.nodes.map((n) => n.port).join(',')} (started)`);
      }),
    );
  }
  if (env.PG_PRIMARY_URL && env.PG_REPLICA_URLS) {
    servers.pgPrimaryUrl = env.PG_PRIMARY_URL;
    servers.pgReplicaUrls = env.PG_REPLICA_URLS.split(',').map((s) => s.trim());
    descr.push('postgres primary + replicas: from PG_PRIMARY_URL / PG_REPLICA_URLS');
  } else {
    tasks.push(
      startPostgres().then((h: PostgresHandle) => {
        keep(h);
        servers.pgPrimaryUrl = h.primaryUrl;
        servers.pgReplicaUrls = h.replicaUrls;
        servers.pgPrimaryPort = h.primaryPort;
        servers.pgReplicaPort = h.replicaPort;
        descr.push(
          `postgres 15: primary :${h.primaryPort}, streaming replica :${h.replicaPort} (started)`,
        );
      }),
    );
  }

  const results = await Promise.allSettled(tasks);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(started.map((s) => s.stop()));
    throw failed.reason;
  }
  const full = servers as TestServers;
  project.provide('servers', full);
  env.AZS_TEST_REDIS_URL = full.redisUrl;
  env.AZS_TEST_REDIS_AUTH_URL = full.redisAuthUrl;
  env.AZS_TEST_CLUSTER_NODES = full.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',');
  env.AZS_TEST_PG_PRIMARY_URL = full.pgPrimaryUrl;
  env.AZS_TEST_PG_REPLICA_URLS = full.pgReplicaUrls.join(',');
  // Printed once so a CI log shows which real servers the integration tests ran against.
  console.log(
    `[azscale test servers] ready in ${Date.now() - t0} ms\n  ${descr.sort().join('\n  ')}`,
  );

  return async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

declare module 'vitest' {
  export interface ProvidedContext {
    servers: TestServers;
  }
}
