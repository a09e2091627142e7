/** A fixed-size ring of the latest `capacity` items: memory stays bounded however long it runs. */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(private readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  last(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }
}

/**
 * A value read at most once per `ttlMs`, however many callers ask: concurrent callers share one
 * read in flight, so N open pages cost the backend what one costs.
 */
export class Cached<T> {
  private value: { at: number; promise: Promise<T> } | undefined;

  constructor(
    private readonly ttlMs: number,
    private readonly read: () => Promise<T>,
  ) {}

  get(): Promise<T> {
    const now = Date.now();
    if (this.value && now - this.value.at < this.ttlMs) return this.value.promise;
    const promise = this.read();
    const entry = { at: now, promise };
    this.value = entry;
    // A failed read is not kept: the next caller tries again.
    promise.catch(() => {
      if (this.value === entry) this.value = undefined;
    });
    return promise;
  }

  /** Forgets the value (after an action changed it). */
  invalidate(): void {
    this.value = undefined;
  }
}
