/**
 * Typed events shared by every module. `on()` returns a disposer: call it (or its `dispose()`)
 * to remove the listener. A listener that throws never breaks the operation that emitted the
 * event: the error is rethrown on a later tick, where the process's usual handlers see it.
 */

/** Removes a listener. Callable directly or through `dispose()`. */
export interface Disposer {
  (): void;
  /** Same as calling the disposer. */
  dispose(): void;
}

// biome-ignore lint/suspicious/noExplicitAny: listener argument lists vary per event
type EventMap = Record<string, (...args: any[]) => void>;

/** A minimal typed event emitter. */
export class Emitter<E extends EventMap> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>();

  /** Adds `listener` for `event`; returns a disposer that removes it. */
  on<K extends keyof E>(event: K, listener: E[K]): Disposer {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    const dispose = () => {
      set.delete(listener);
    };
    return Object.assign(dispose, { dispose });
  }

  /** Adds a listener that runs once. */
  once<K extends keyof E>(event: K, listener: E[K]): Disposer {
    const d = this.on(event, ((...args: Parameters<E[K]>) => {
      d();
      listener(...args);
    }) as E[K]);
    return d;
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** True when `event` has at least one listener (lets hot paths skip building payloads). */
  has(event: keyof E): boolean {
    const set = this.listeners.get(event);
    return set !== undefined && set.size > 0;
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` with `args`. */
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }

  /** Removes every listener. */
  clear(): void {
    this.listeners.clear();
  }
}
