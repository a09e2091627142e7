/** The SessionStore contract on memory, Redis standalone and Cluster (both append modes). */
import { MemorySessionStore, RedisSessionStore } from '../../src/session/index.js';
import { describeSessionStore } from '../../src/testing/index.js';
import { servers } from '../harness/env.js';

const s = servers();

describeSessionStore('memory', () => new MemorySessionStore());
describeSessionStore('redis standalone', () => new RedisSessionStore(s.redisUrl), {
  replaySafe: true,
});
describeSessionStore('redis cluster', () => new RedisSessionStore({ nodes: s.clusterNodes }), {
  replaySafe: true,
});
// The server-side (Lua) append, which the default mode only uses after losing a race, proved
// on its own.
describeSessionStore(
  'redis standalone, appendMode server',
  () => new RedisSessionStore(s.redisUrl, { appendMode: 'server' }),
  { replaySafe: true },
);
describeSessionStore(
  'redis cluster, appendMode server',
  () => new RedisSessionStore({ nodes: s.clusterNodes }, { appendMode: 'server' }),
  { replaySafe: true },
);
