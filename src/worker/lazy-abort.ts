/**
 * An abort handle whose `AbortSignal` exists only once someone reads it. Most handlers never
 * look at `ctx.signal`; an `AbortController` per task cost about a tenth of a no-op task's
 * client time (an EventTarget each), so it is made on first read, already aborted when the
 * abort came first.
 */
export class LazyAbort {
  private ac: AbortController | undefined;
  private reason: unknown;
  private done = false;

  /** The signal; made on first read. */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.done) this.ac.abort(this.reason);
    }
    return this.ac.signal;
  }

  /** True once {@link abort} was called. */
  get aborted(): boolean {
    return this.done;
  }

  /** Aborts with `reason`; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.reason = reason;
    this.ac?.abort(reason);
  }
}
