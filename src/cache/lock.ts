import { randomBytes } from 'node:crypto';
import { ClosedError } from '../core/errors.js';
import { sleep } from '../core/timers.js';
import type { ResolvedLock } from './options.js';
import type { Budget, RemoteTier } from './remote-tier.js';

/** @internal What a locked load needs from the cache. */
export interface LockHost {
  readonly remote: RemoteTier;
  readonly isClosed: boolean;
  /** Reads `k` from the shared store (filling L1). */
  remoteGet(k: string, b: Budget): Promise<string | null>;
  /** Runs the loader and stores its result. */
  loadAndStore(
    k: string,
    ttl: number,
    load: () => Promise<string | undefined>,
    b: Budget,
  ): Promise<string | undefined>;
}

/**
 * @internal A miss under a store lock (`SET NX PX` on Redis): one holder per cluster runs the
 * loader; the others poll for its value until `lock.wait`, then run the loader themselves. A
 * store that cannot be reached means calling through (when degrading).
 */
export async function lockedLoad(
  host: LockHost,
  k: string,
  ttl: number,
  lock: ResolvedLock,
  load: () => Promise<string | undefined>,
  b: Budget,
): Promise<string | undefined> {
  const remote = host.remote;
  const store = remote.store;
  const lockKey = `${k}:__azs_lock`;
  const token = randomBytes(12).toString('hex');
  const deadline = performance.now() + lock.waitMs;
  // Waiting for another holder is bounded by lock.wait. Each round trip gets a budget of its
  // own (backendTimeout): sharing the call's budget made a long wait "time out" on Redis after
  // a few hundred polls, and every waiter then ran the loader itself.
  let budget = b;
  for (;;) {
    const got = await remote.degrade(
      'lock',
      () => store.setIfAbsent(lockKey, token, lock.ttl),
      null,
      budget,
    );
    if (got === null) return host.loadAndStore(k, ttl, load, remote.newBudget()); // call through
    if (got) {
      try {
        // The previous holder may have written between our read and our lock.
        const v = await host.remoteGet(k, remote.newBudget());
        if (v !== null) return v;
        return await host.loadAndStore(k, ttl, load, remote.newBudget());
      } finally {
        // Not awaited: the caller has its value; an unreleased lock expires after lock.ttl.
        remote
          .degrade('unlock', () => store.deleteIfEquals(lockKey, token), false)
          .catch(() => undefined);
      }
    }
    const left = deadline - performance.now();
    if (left <= 0) return host.loadAndStore(k, ttl, load, remote.newBudget());
    await sleep(Math.min(lock.pollMs, left));
    if (host.isClosed) throw new ClosedError('the DistributedCache was closed while waiting');
    const v = await host.remoteGet(k, remote.newBudget());
    if (v !== null) return v;
    budget = remote.newBudget();
  }
}
