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
