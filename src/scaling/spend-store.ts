/**
 * The most categories one hour bucket keeps apart. Spend under a further new category is still
 * added to the total, and to {@link OTHER_CATEGORY}, so category names built from user data
 * cannot grow a bucket without bound.
 */
export const MAX_CATEGORIES = 1000;

/** Where spend goes once an hour already has {@link MAX_CATEGORIES} categories. */
export const OTHER_CATEGORY = 'other';

/**
 * How long (ms) a store remembers an operation id, so an increment resent after a lost reply
 * (ioredis resends on reconnect) is applied once.
 */
export const OP_ID_TTL_MS = 600_000;

/**
 * Where {@link CostOptimizer} keeps spend: one bucket per clock hour, a total and per-category
 * amounts. Memory (embedded, per process) and Redis (shared by every instance) implement it.
 */
export interface SpendStore {
  /**
   * Adds `amount` dollars to the bucket of `hour` (and to `category` within it, when given) and
   * returns the bucket's new total. `ttlSeconds` is how long the bucket is kept after its last
   * write.
   */
  add(
    hour: number,
    amount: number,
    category: string | undefined,
    ttlSeconds: number,
  ): Promise<number>;
  /** The total of the bucket of `hour`; 0 when it does not exist. */
  total(hour: number): Promise<number>;
  /** Per-category amounts of the bucket of `hour` (spend recorded without a category is absent). */
  categories(hour: number): Promise<Record<string, number>>;
  /** Releases what the store created. Idempotent. */
  close(): Promise<void>;
}
