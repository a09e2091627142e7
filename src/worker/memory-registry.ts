/**
 * Where this process's in-memory queues and schedules live. Handles of the same queue name in
 * one registry share their tasks and schedules; a {@link TaskQueue} without `redis` uses
 * {@link defaultMemoryRegistry} unless given its own `memoryRegistry` (e.g. one per test, so
 * tests of the same queue name do not see each other's tasks).
 *
 * @example
 * const registry = new MemoryRegistry();
 * const queue = new TaskQueue({ name: 'jobs', memoryRegistry: registry });
 * // ...
 * await queue.close();
 * registry.close(); // forgets every queue and schedule it still holds
 */
export class MemoryRegistry {
  /** @internal Queue states by name (memory-state.ts). */
  readonly queues = new Map<string, { notifyWork(): void }>();
  /** @internal Schedule states by queue name (schedule-store.ts). */
  readonly schedules = new Map<string, object>();

  /** Names of the queues that have open handles or schedules here. */
  get names(): string[] {
    return [...new Set([...this.queues.keys(), ...this.schedules.keys()])];
  }

  /**
   * Forgets every queue and schedule: tasks, results and schedules held here are dropped and
   * idle workers are woken (they find an empty queue). Handles opened afterwards start empty.
   * The registry stays usable.
   */
  close(): void {
    const states = [...this.queues.values()];
    this.queues.clear();
    this.schedules.clear();
    for (const s of states) s.notifyWork();
  }
}

/** The registry of queues created without `redis` and without `memoryRegistry`. */
export const defaultMemoryRegistry = new MemoryRegistry();

/**
 * True for a {@link MemoryRegistry}, also one from another copy of this module (the ESM and the
 * CJS build of the package each have their own class).
 */
export function isMemoryRegistry(v: unknown): v is MemoryRegistry {
  const r = v as Partial<MemoryRegistry> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.queues instanceof Map &&
    r.schedules instanceof Map &&
    typeof r.close === 'function'
  );
}
