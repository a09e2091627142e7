import type { BreakerStateStore, SharedBreakerView, TrialResult } from './store.js';

interface BreakerEntry {
  state: 'open' | 'half-open';
  untilMs: number;
  trialOwner?: string;
  trialUntilMs: number;
  generation: number;
}

/**
 * Entries kept after their open period (or trial lease) ended, as the Redis hash is: 10 minutes.
 * A name nobody calls any more is dropped after that.
 */
const BREAKER_LINGER_MS = 600_000;
// Sweep for lapsed entries once the map holds this many more than after the last sweep.
/** Sweep for lapsed entries once a map holds this many more than after the last sweep. */
export const SWEEP_EVERY = 1024;

/** Shared breaker state held in this process. */
export class MemoryBreakerStore implements BreakerStateStore {
  private readonly entries = new Map<string, BreakerEntry>();
  // One generation counter for every name (and at least the clock): it only has to grow per
  // name, and a store-wide one needs no per-name map that would grow with every name ever used.
  private generation = 0;
  private sweepAt = SWEEP_EVERY;

  /** Names with an open or half-open entry held now (after dropping lapsed ones). */
  get size(): number {
    this.sweep(Date.now());
    return this.entries.size;
  }

  // The entry, unless it lapsed (then it is gone, as the Redis hash expires).
  private get(name: string, now: number): BreakerEntry | undefined {
    const e = this.entries.get(name);
    if (e && this.lapsed(e, now)) {
      this.entries.delete(name);
      return undefined;
    }
    return e;
  }

  private view(name: string, now = Date.now()): SharedBreakerView {
    const e = this.get(name, now);
    if (!e) return { state: 'closed', remainingMs: 0, generation: this.generation };
    return {
      state: e.state,
      remainingMs: e.state === 'open' ? Math.max(0, e.untilMs - now) : 0,
      generation: e.generation,
    };
  }

  private bump(_name: string): number {
    this.generation = Math.max(this.generation + 1, Date.now());
    return this.generation;
  }

  private lapsed(e: BreakerEntry, now: number): boolean {
    const end = e.state === 'open' ? e.untilMs : e.trialUntilMs;
    return end + BREAKER_LINGER_MS <= now;
  }

  private sweep(now: number): void {
    for (const [name, e] of this.entries) if (this.lapsed(e, now)) this.entries.delete(name);
    this.sweepAt = this.entries.size + SWEEP_EVERY;
  }

  async read(name: string): Promise<SharedBreakerView> {
    return this.view(name);
  }

  async open(name: string, openMs: number): Promise<SharedBreakerView> {
    if (this.entries.size >= this.sweepAt) this.sweep(Date.now());
    if (!this.get(name, Date.now())) {
      this.entries.set(name, {
        state: 'open',
        untilMs: Date.now() + openMs,
        trialUntilMs: 0,
        generation: this.bump(name),
      });
    }
    return this.view(name);
  }

  async tryTrial(name: string, owner: string, trialTtlMs: number): Promise<TrialResult> {
    const now = Date.now();
    const e = this.get(name, now);
    if (e?.state === 'half-open' && e.trialOwner === owner && now < e.trialUntilMs) {
      return { granted: true, view: this.view(name, now) };
    }
    if (
      e &&
      ((e.state === 'open' && now >= e.untilMs) ||
        (e.state === 'half-open' && now >= e.trialUntilMs))
    ) {
      e.state = 'half-open';
      e.trialOwner = owner;
      e.trialUntilMs = now + trialTtlMs;
      e.generation = this.bump(name);
      return { granted: true, view: this.view(name, now) };
    }
    return { granted: false, view: this.view(name, now) };
  }

  async settleTrial(
    name: string,
    owner: string,
    success: boolean,
    openMs: number,
  ): Promise<SharedBreakerView> {
    const e = this.get(name, Date.now());
    if (e && e.state === 'half-open' && e.trialOwner === owner) {
      if (success) {
        this.entries.delete(name);
        this.bump(name);
      } else {
        e.state = 'open';
        e.untilMs = Date.now() + openMs;
        e.trialOwner = undefined;
        e.generation = this.bump(name);
      }
    }
    return this.view(name);
  }

  async reset(name: string): Promise<void> {
    if (this.entries.delete(name)) this.bump(name);
  }

  async close(): Promise<void> {}
}
