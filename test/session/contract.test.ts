import { servers, uniquePrefix } from '../harness/env.js';
import { DistributedSessionManager } from '../../src/session/index.js';
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
