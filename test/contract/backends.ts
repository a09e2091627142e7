/** The backends a contract suite runs on: embedded memory, standalone Redis, Redis Cluster. */
import { Cluster, Redis } from 'ioredis';
import { servers } from '../harness/env.js';

/** A raw ioredis client, for looking at what a backend stored. */
export type Raw = Redis | Cluster;

/** One backend: the `redis` option to pass, and a raw client on the same server (none embedded). */
export interface Backend {
  name: string;
  redis: () => string | { nodes: { host: string; port: number }[] } | undefined;
  raw: () => Raw | undefined;
}

/** Memory (named `memoryName`), standalone and Cluster, in that order. */
export function contractBackends(memoryName = 'memory'): Backend[] {
  return [
    { name: memoryName, redis: () => undefined, raw: () => undefined },
    {
      name: 'redis standalone',
      redis: () => servers().redisUrl,
      raw: () => new Redis(servers().redisUrl),
    },
    {
      name: 'redis cluster',
      redis: () => ({ nodes: servers().clusterNodes }),
      raw: () => new Cluster(servers().clusterNodes),
    },
  ];
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
