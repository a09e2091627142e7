/** @internal What the registry needs of a default cache. */
export interface RegisteredCache {
  /** True once `close()` ran (a closed default is replaced). */
  readonly isClosed: boolean;
  /** Closes the cache. */
  close(): Promise<void>;
}

/** @internal A member of a sibling group. */
export interface SiblingCache {
  /** Drops `keys` from the in-process tier (a write elsewhere in this process changed them). */
  dropLocal(keys: readonly string[]): void;
}

/**
 * What used to be process globals of the cache, in one object you can see, replace and close:
 * the default cache that `cached` uses when given no `cache`, and the groups of caches of this
 * process on the same Redis and channel, which invalidate each other's in-process tier directly
 * (pub/sub carries the same message to other processes, a network hop later).
 *
 * `cacheRegistry` (exported from `azscale/cache`) is the one every cache joins unless its
 * `registry` option names another; tests that want isolation make their own.
 * @typeParam C - The cache type (a `DistributedCache`).
 * @example
 * import { cacheRegistry, DistributedCache } from 'azscale/cache';
 * cacheRegistry.setDefault(new DistributedCache({ redis: process.env.REDIS_URL }));
 * // ... on shutdown:
 * await cacheRegistry.close();
 */
export class CacheRegistry<C extends RegisteredCache = RegisteredCache> {
  private readonly groups = new Map<string, Set<WeakRef<SiblingCache>>>();
  private current: C | undefined;
  private created = false;
  /** @internal Bumped whenever the default changes, so `cached` notices with one read. */
  version = 0;

  /**
   * @param create - Makes the default cache on first use (an in-memory cache: it never connects
   *   anywhere).
   */
  constructor(private readonly create: () => C) {}

  /** The default cache: the one given to {@link setDefault}, else one made on first use. */
  default(): C {
    const c = this.current;
    if (c !== undefined && !c.isClosed) return c;
    // Made again after a close: `cached` functions defined earlier keep working.
    this.current = this.create();
    this.created = true;
    this.version++;
    return this.current;
  }

  /**
   * Makes `cache` the default (`undefined`: back to one made on first use). A default the
   * registry made itself is closed when replaced; one you gave it is yours to close.
   */
  async setDefault(cache: C | undefined): Promise<void> {
    const old = this.current;
    const owned = this.created;
    this.current = cache;
    this.created = false;
    this.version++;
    if (owned && old !== undefined && old !== cache) await old.close();
  }

  /**
   * Closes the default cache if the registry made it, and forgets the default (the next
   * {@link default} makes a new one). Caches that joined a sibling group keep working; each
   * leaves its group when it closes. Idempotent.
   */
  async close(): Promise<void> {
    await this.setDefault(undefined);
  }

  /**
   * @internal Adds `member` to the group `id` (one Redis target and channel); returns the
   * function that takes it out again.
   */
  join(id: string, member: SiblingCache): () => void {
    let group = this.groups.get(id);
    if (!group) this.groups.set(id, (group = new Set()));
    // Instances collected without close() leave dead refs: drop them as new ones join.
    for (const ref of group) if (ref.deref() === undefined) group.delete(ref);
    const ref = new WeakRef(member);
    group.add(ref);
    const joined = group;
    return () => {
      joined.delete(ref);
      if (joined.size === 0 && this.groups.get(id) === joined) this.groups.delete(id);
    };
  }

  /** @internal Drops `keys` from the in-process tier of every member of `id` but `self`. */
  dropFromSiblings(id: string, self: SiblingCache, keys: readonly string[]): void {
    // Looked up each time: the group is removed when its last member closes, and a new one may
    // have been made since for this target (an instance without an L1 is not a member).
    const group = this.groups.get(id);
    if (group === undefined || group.size === 0) return;
    for (const ref of group) {
      const other = ref.deref();
      if (other === undefined) {
        group.delete(ref);
        continue;
      }
      if (other !== self) other.dropLocal(keys);
    }
  }

  /** @internal Number of sibling groups (tests check that closed caches leave). */
  get groupCount(): number {
    return this.groups.size;
  }
}
