import { DistributedSessionManager, RedisSessionStore } from '../../src/session/index.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { sessionContract } from './contract.js';

sessionContract({
  name: 'memory',
  make: (o = {}) => new DistributedSessionManager({ prefix: uniquePrefix('session'), ...o }),
});

sessionContract({
  name: 'redis standalone',
  make: (o = {}) =>
    new DistributedSessionManager({
      redis: servers().redisUrl,
      prefix: uniquePrefix('session'),
      ...o,
    }),
});

sessionContract({
  name: 'redis cluster',
  make: (o = {}) =>
    new DistributedSessionManager({
      redis: { nodes: servers().clusterNodes },
      prefix: uniquePrefix('session'),
      ...o,
    }),
});

// The server-side (Lua) append, which the default mode only uses after losing a race, proved
// on its own.
sessionContract({
  name: 'redis standalone, appendMode server',
  make: (o = {}) =>
    new DistributedSessionManager({
      store: new RedisSessionStore(servers().redisUrl, { appendMode: 'server' }),
      prefix: uniquePrefix('session'),
      ...o,
    }),
});

sessionContract({
  name: 'redis cluster, appendMode server',
  make: (o = {}) =>
    new DistributedSessionManager({
      store: new RedisSessionStore({ nodes: servers().clusterNodes }, { appendMode: 'server' }),
      prefix: uniquePrefix('session'),
      ...o,
    }),
});
