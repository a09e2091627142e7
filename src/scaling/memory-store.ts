import { MAX_CATEGORIES, OTHER_CATEGORY, type SpendStore } from './spend-store.js';

interface Bucket {
  total: number;
  categories: Map<string, number>;
  expiresAt: number;
}

/**
 * Spend in this process's memory: the embedded default. Every process has its own total, so a
 * fleet must share a {@link RedisSpendStore} to enforce one budget.
 */
export class MemorySpendStore implements SpendStore {
  private readonly buckets = new Map<number, Bucket>();
  private readonly now: () => number;

  /** @param now - clock in epoch milliseconds, used to expire buckets. @default Date.now */
  constructor(now: () => number = () => Date.now()) {
    this.now = now;
  }

  async add(
    hour: number,
    amount: number,
    category: string | undefined,
    ttlSeconds: number,
  ): Promise<number> {
    const now = this.now();
    this.sweep(now);
    let b = this.buckets.get(hour);
    if (!b) {
      b = { total: 0, categories: new Map(), expiresAt: 0 };
      this.buckets.set(hour, b);
    }
    b.total += amount;
    if (category !== undefined) {
      const c =
        b.categories.has(category) || b.categories.size < MAX_CATEGORIES
          ? category
          : OTHER_CATEGORY;
      b.categories.set(c, (b.categories.get(c) ?? 0) + amount);
    }
    b.expiresAt = now + ttlSeconds * 1000;
    return b.total;
  }

  async total(hour: number): Promise<number> {
    return this.live(hour)?.total ?? 0;
  }

  async categories(hour: number): Promise<Record<string, number>> {
    return Object.fromEntries(this.live(hour)?.categories ?? []);
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }

  private live(hour: number): Bucket | undefined {
    const b = this.buckets.get(hour);
    if (b && b.expiresAt <= this.now()) {
      this.buckets.delete(hour);
      return undefined;
    }
    return b;
  }

  private sweep(now: number): void {
    for (const [h, b] of this.buckets) if (b.expiresAt <= now) this.buckets.delete(h);
  }
}
