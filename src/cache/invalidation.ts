import { randomBytes } from 'node:crypto';
import type { CounterHandle } from '../core/metrics.js';
import type { LocalTier } from './local-tier.js';
import type { CacheRegistry, SiblingCache } from './registry.js';
import { type Budget, type RemoteTier, withTimeout } from './remote-tier.js';
import type { CacheInvalidationBus, CacheStore } from './store.js';

/** The channel name, after the cache's prefix. */
const INVALIDATION_CHANNEL = '__azscale:cache:invalidate';

/** @internal How a cache takes part in invalidation. */
export interface InvalidationSetup {
  readonly prefix: string;
  readonly remote: RemoteTier;
  /** The store's bus, when it has one and `invalidation` is on. */
  readonly bus: (CacheStore & CacheInvalidationBus) | undefined;
  /** This cache's in-process tier, if any: what messages drop keys from. */
  readonly local: LocalTier | undefined;
  /** The target description of a Redis store (siblings are grouped by it), else `undefined`. */
  readonly target: string | undefined;
  readonly registry: CacheRegistry;
  readonly owner: SiblingCache;
  readonly received: CounterHandle;
}

/**
 * @internal Keeps other instances' in-process tiers honest after this one writes: directly for
 * instances of this process on the same target (the registry's sibling groups), through the
 * store's pub/sub for other processes. Also keeps this instance's subscription alive.
 */
export class Invalidation {
  private readonly channel: string;
  private readonly instanceId = randomBytes(8).toString('hex');
  private readonly siblingsId: string;
  private leave: (() => void) | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private subscribing: Promise<void> | undefined;
  private lastSubscribeFailure = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(private readonly s: InvalidationSetup) {
    this.channel = `${s.prefix}${INVALIDATION_CHANNEL}`;
    // Instances of one process on one Redis invalidate each other's L1 directly and at once;
    // pub/sub is for other processes (and on a Cluster its messages take a hop between nodes).
    // A mistaken match only costs an extra L1 miss. Only instances with an L1 are members;
    // every instance here invalidates the members.
    this.siblingsId = s.bus && s.target !== undefined ? `${s.target}|${this.channel}` : '';
    if (this.siblingsId !== '' && s.local) this.leave = s.registry.join(this.siblingsId, s.owner);
  }

  /** After a write of `keys` here: siblings drop them now, other processes when published. */
  async written(keys: string[], published: boolean, b: Budget): Promise<void> {
    if (this.siblingsId !== '')
      this.s.registry.dropFromSiblings(this.siblingsId, this.s.owner, keys);
    if (published) await this.publish(keys, b);
  }

  private async publish(keys: string[], b: Budget): Promise<void> {
    const bus = this.s.bus;
    if (!bus) return;
    const msg = `${this.instanceId}|${keys.join('\n')}`;
    await this.s.remote.degrade('publish', () => bus.publish(this.channel, msg), undefined, b);
  }

  private onMessage(msg: string): void {
    const bar = msg.indexOf('|');
    if (bar < 0 || msg.slice(0, bar) === this.instanceId) return;
    this.s.received.inc();
    this.s.local?.drop(msg.slice(bar + 1).split('\n'));
  }

  /**
   * Subscribes in the background when this instance has an L1 and is not subscribed yet. After
   * a failed attempt it retries at most once per backend timeout (never per call), unless
   * `force`.
   */
  ensureSubscribed(force = false): void {
    const { bus, local, remote } = this.s;
    if (this.unsubscribe || this.subscribing || !local || !bus || this.closed) return;
    if (!force && performance.now() - this.lastSubscribeFailure < remote.timeoutMs) return;
    // Ping on the command connection first: while Redis is known to be down it fails at once,
    // so an outage costs no new subscriber connection per retry (each one, once created, would
    // reconnect on its own and all of them would come back with Redis).
    const attempt = bus.ping().then(() =>
      bus.subscribe(
        this.channel,
        (m) => this.onMessage(m),
        // (Re)subscribed: anything published meanwhile was missed.
        () => local.reset(),
      ),
    );
    this.subscribing = withTimeout(attempt, remote.timeoutMs, () => {
      // Given up on: if it still succeeds later, undo it, or each retry would leave one more
      // subscribed connection behind.
      attempt.then((unsub) => unsub().catch(() => undefined)).catch(() => undefined);
      return remote.timeoutError('subscribe');
    })
      .then(
        async (unsub) => {
          if (this.closed) {
            await unsub().catch(() => undefined);
            return;
          }
          this.unsubscribe = unsub;
        },
        (e: unknown) => {
          this.lastSubscribeFailure = performance.now();
          remote.reportBackendError('subscribe', e, true);
        },
      )
      .finally(() => {
        this.subscribing = undefined;
      });
  }

  /** Subscribes now and resolves whether the subscription is active (for `ready()`). */
  async subscribed(): Promise<boolean> {
    if (!this.s.local || !this.s.bus) return true;
    this.ensureSubscribed(true);
    await this.subscribing;
    return this.unsubscribe !== undefined;
  }

  /** Leaves the sibling group and unsubscribes. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    this.leave?.();
    this.leave = undefined;
    await this.subscribing?.catch(() => undefined);
    const unsub = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsub) await unsub().catch(() => undefined);
  }
}
