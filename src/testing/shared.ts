/** Options the suites of shared-state stores accept. */
import type { SuiteOptions } from './api.js';

/** Options of the suites whose store may be shared between processes. */
export interface SharedStoreSuiteOptions extends SuiteOptions {
  /**
   * True when two stores from the factory reach the same data (Redis, a database), as two
   * processes would; the suite then also checks that state set through one is seen through the
   * other. False for an in-process store.
   * @default false
   */
  shared?: boolean;
}

/** @internal Opens stores for one test and closes them after it. */
export class StorePool<S extends { close(): Promise<void> }> {
  private readonly open: S[] = [];
  constructor(private readonly factory: () => S | Promise<S>) {}
  /** A fresh store from the factory, closed by {@link closeAll}. */
  async make(): Promise<S> {
    const s = await this.factory();
    this.open.push(s);
    return s;
  }
  /** Closes every store made since the last call. */
  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((s) => s.close()));
  }
}
