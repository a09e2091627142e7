import { type MemoryRegistry, defaultMemoryRegistry } from './memory-registry.js';
/**
 * Where a queue's schedules live. Definitions are JSON text ({@link ScheduleDef}); the store
 * never parses them. Exactly-once per tick rests on two atomic steps:
 * - {@link ScheduleStore.advance} moves a schedule's next run from the value a scheduler read to
 *   a new one and records the ticks that scheduler decided to fire as *pending*, only if neither
 *   the next run nor the definition changed meanwhile — so of two schedulers that read the same
 *   due tick, one commits its plan and the other does nothing;
 * - a pending tick is submitted with a deterministic task id (idempotent) and then dropped by
 *   {@link ScheduleStore.donePending}; a scheduler that dies in between leaves it pending and
 *   the next round of any scheduler submits it (the id makes a second submit a no-op).
 * @internal
 */
export interface ScheduleStore {
  /** Adds or replaces a definition; keeps the next run when `timing` is unchanged. Returns the next run. */
  upsert(id: string, def: string, timing: string, next: number | null): Promise<number | null>;
  /** Removes a schedule; false when there was none. Ticks already pending are still submitted. */
  remove(id: string): Promise<boolean>;
  /** Every schedule with its next run (null: none in the future). */
  list(): Promise<StoredSchedule[]>;
  /** Schedules due at `now` (at most `limit`), pending ticks, and the earliest next run. */
  due(now: number, limit: number): Promise<DueResult>;
  /** The compare-and-set described above; true when this caller's plan was committed. */
  advance(
    id: string,
    expectNext: number,
    expectDef: string,
    next: number | null,
    fire: readonly number[],
  ): Promise<boolean>;
  /** Drops a pending tick once its task was submitted. */
  donePending(id: string, tick: number): Promise<void>;
  /** Removes every schedule and pending tick (obliterate). */
  clear(): Promise<void>;
}

/** A stored schedule. @internal */
export interface StoredSchedule {
  id: string;
  def: string;
  next: number | null;
}

/** A tick committed but maybe not yet submitted. @internal */
export interface PendingTick {
  id: string;
  tick: number;
  def: string;
}

/** What {@link ScheduleStore.due} returns. @internal */
export interface DueResult {
  due: { id: string; def: string; next: number }[];
  pending: PendingTick[];
  /** The earliest next run of any schedule (ms), or null when there is none. */
  earliest: number | null;
}

interface MemoryScheduleState {
  defs: Map<string, string>;
  timing: Map<string, string>;
  next: Map<string, number>;
  pending: Map<string, PendingTick>;
}

/** The in-process store behind memory queues. Every method is synchronous inside, hence atomic. @internal */
export class MemoryScheduleStore implements ScheduleStore {
  private readonly s: MemoryScheduleState;

  // Memory queues of one name in one registry share their tasks; their schedules too.
  constructor(queueName: string, registry: MemoryRegistry = defaultMemoryRegistry) {
    let s = registry.schedules.get(queueName) as MemoryScheduleState | undefined;
    if (!s) {
      s = { defs: new Map(), timing: new Map(), next: new Map(), pending: new Map() };
      registry.schedules.set(queueName, s);
    }
    this.s = s;
  }

  async upsert(
    id: string,
    def: string,
    timing: string,
    next: number | null,
  ): Promise<number | null> {
    const s = this.s;
    const keep = s.timing.get(id) === timing && s.defs.has(id);
    s.defs.set(id, def);
    s.timing.set(id, timing);
    if (!keep) {
      if (next === null) s.next.delete(id);
      else s.next.set(id, next);
    }
    return s.next.get(id) ?? null;
  }

  async remove(id: string): Promise<boolean> {
    const had = this.s.defs.delete(id);
    this.s.timing.delete(id);
    this.s.next.delete(id);
    return had;
  }

  async list(): Promise<StoredSchedule[]> {
    return [...this.s.defs].map(([id, def]) => ({ id, def, next: this.s.next.get(id) ?? null }));
  }

  async due(now: number, limit: number): Promise<DueResult> {
    const due: DueResult['due'] = [];
    let earliest: number | null = null;
    for (const [id, next] of this.s.next) {
      if (earliest === null || next < earliest) earliest = next;
      const def = this.s.defs.get(id);
      if (next <= now && def !== undefined && due.length < limit) due.push({ id, def, next });
    }
    due.sort((a, b) => a.next - b.next);
    return { due, pending: [...this.s.pending.values()].slice(0, limit), earliest };
  }

  async advance(
    id: string,
    expectNext: number,
    expectDef: string,
    next: number | null,
    fire: readonly number[],
  ): Promise<boolean> {
    const s = this.s;
    if (s.next.get(id) !== expectNext || s.defs.get(id) !== expectDef) return false;
    if (next === null) s.next.delete(id);
    else s.next.set(id, next);
    for (const tick of fire) s.pending.set(`${id}\n${tick}`, { id, tick, def: expectDef });
    return true;
  }

  async donePending(id: string, tick: number): Promise<void> {
    this.s.pending.delete(`${id}\n${tick}`);
  }

  async clear(): Promise<void> {
    for (const m of [this.s.defs, this.s.timing, this.s.next, this.s.pending]) m.clear();
  }
}
