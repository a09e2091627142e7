/**
 * The three small backend contracts of azscale/resilience. Each has a memory implementation
 * (`memory-store.ts`, the reference semantics) and a Redis one (`redis-store.ts`, standalone and
 * Cluster). The classes users call ({@link CircuitBreaker}, {@link ConcurrencyLimiter},
 * {@link RateLimiter}) only ever talk to these interfaces.
 *
 * Every time is in milliseconds here (internal contract); public options stay in seconds.
 * Stores measure time on their own clock (Redis `TIME` for Redis), and hand back durations
 * relative to it, so callers never compare clocks of two machines.
 */

/** Shared breaker state as a store sees it. */
export interface SharedBreakerView {
  /** `closed` when no instance has opened the breaker (or it closed again). */
  state: 'closed' | 'open' | 'half-open';
  /** For `open`: milliseconds until a half-open trial may start (0 when it may start now). */
  remainingMs: number;
  /** Changes on every transition; lets a reader notice a close-then-open it did not see. */
  generation: number;
}

/** Result of {@link BreakerStateStore.tryTrial}. */
export interface TrialResult {
  /** True when this caller won the single half-open trial. */
  granted: boolean;
  /** The state after the attempt. */
  view: SharedBreakerView;
}

/**
 * Where a breaker shares its open/half-open state with other instances. `name` is the breaker
 * name (validated). Only one caller in the fleet gets a trial until it reports back or its
 * trial lease (`trialTtlMs`) runs out.
 */
export interface BreakerStateStore {
  /** Reads the shared state. */
  read(name: string): Promise<SharedBreakerView>;
  /** Opens the breaker for `openMs` unless it is already open (then it is left as is). */
  open(name: string, openMs: number): Promise<SharedBreakerView>;
  /**
   * Claims the half-open trial when the open period has passed (or a previous trial's lease ran
   * out). `owner` identifies the claimant.
   */
  tryTrial(name: string, owner: string, trialTtlMs: number): Promise<TrialResult>;
  /**
   * Reports the trial: `success` closes the breaker, failure opens it again for `openMs`.
   * Ignored unless `owner` holds the trial.
   */
  settleTrial(
    name: string,
    owner: string,
    success: boolean,
    openMs: number,
  ): Promise<SharedBreakerView>;
  /** Forces the breaker closed for everyone. */
  reset(name: string): Promise<void>;
  /** Releases what the store created (connections). */
  close(): Promise<void>;
}

/** Result of {@link SemaphoreStore.acquire}. */
export interface SemaphoreAcquireResult {
  /** True when the lease was granted. */
  acquired: boolean;
  /** Weight in use after the call (including this lease when granted). */
  used: number;
  /** When refused: milliseconds until the earliest current lease expires (a polling hint). */
  retryHintMs: number;
}

/**
 * Who is asking, for fairness between processes. Waiting processes form a FIFO in the store: a
 * free slot goes to the longest-waiting process, and a process that got a slot but still has
 * callers waiting goes to the back of the line (round robin), so a busy process cannot keep
 * re-taking the slots it frees while another process waits.
 */
export interface SemaphoreWaiter {
  /** Identifies the process (limiter instance). */
  id: string;
  /** True when this process has more callers waiting after this one. */
  more: boolean;
  /** A waiter not heard from for this many milliseconds is dropped from the line (it died). */
  staleMs: number;
}

/**
 * A counting semaphore whose slots are leases: a holder that stops renewing loses its slot
 * `ttlMs` after its last renewal. `key` names one semaphore (validated).
 */
export interface SemaphoreStore {
  /**
   * Takes `weight` slots under `leaseId` if `used + weight <= limit` and no process that waits
   * longer needs them (see {@link SemaphoreWaiter}). Idempotent per lease. A refused `waiter`
   * joins (or stays in) the line.
   */
  acquire(
    key: string,
    leaseId: string,
    weight: number,
    limit: number,
    ttlMs: number,
    waiter?: SemaphoreWaiter,
  ): Promise<SemaphoreAcquireResult>;
  /** Extends a live lease to `ttlMs` from now; false when the lease is gone (expired/reclaimed). */
  renew(key: string, leaseId: string, ttlMs: number): Promise<boolean>;
  /** Frees a lease; false when it was already gone. */
  release(key: string, leaseId: string): Promise<boolean>;
  /** Takes `waiterId` out of the line (its callers gave up or were served). */
  leave(key: string, waiterId: string): Promise<void>;
  /** Weight held by live leases (expired ones are reclaimed first). */
  used(key: string): Promise<number>;
  /** Releases what the store created (connections). */
  close(): Promise<void>;
}

/** One call's cost for {@link RateStore.take}. */
export interface RateCost {
  /** Milliseconds of budget one request uses (`60000 / requestsPerMinute`); 0 = no request budget. */
  requestIntervalMs: number;
  /** Milliseconds of budget one token uses (`60000 / tokensPerMinute`); 0 = no token budget. */
  tokenIntervalMs: number;
  /** Tokens this call spends. */
  tokens: number;
  /** The budget period (burst window) in milliseconds: 60000 for per-minute limits. */
  periodMs: number;
  /**
   * `gcra` (default): a token bucket, a period's budget as a burst then a steady refill.
   * `sliding-window`: in any `periodMs` at most `requestLimit` requests and `tokenLimit` tokens.
   */
  mode?: RateMode;
  /** Sliding window: requests allowed per `periodMs`; 0 = no request budget. */
  requestLimit?: number;
  /** Sliding window: tokens allowed per `periodMs`; 0 = no token budget. */
  tokenLimit?: number;
}

/** How a rate budget is counted: a GCRA token bucket, or a sliding window. */
export type RateMode = 'gcra' | 'sliding-window';

/** One correction of the tokens a granted call spent, for {@link RateStore.adjust}. */
export interface RateAdjustment {
  /** Tokens to charge (positive) or give back (negative). */
  tokens: number;
  /**
   * Identifies the correction: a second adjustment with the same id (a command resent after a
   * lost reply, or a caller settling one grant twice) is not applied again.
   */
  id: string;
  /**
   * When the corrected call was granted ({@link RateTakeResult.at}, the store's clock): a
   * sliding window gives refunds back to the slot the call was counted in.
   */
  at?: number;
}

/** Result of {@link RateStore.take}. */
export interface RateTakeResult {
  /** True when the call fits both budgets (and the key is not paused); the budgets were spent. */
  allowed: boolean;
  /** When refused: milliseconds until the call would fit. */
  retryAfterMs: number;
  /** When allowed: the store's clock (ms since the epoch, may have a fraction) at the grant. */
  at?: number;
}

/**
 * What {@link RateStore.peek} reads: how far each budget's theoretical arrival time is ahead of
 * now (0 = the whole burst is available) and how long the key stays paused, all in milliseconds.
 */
export interface RatePeekResult {
  /** Milliseconds the request budget's arrival time is ahead of now. */
  requestAheadMs: number;
  /** Milliseconds the token budget's arrival time is ahead of now. */
  tokenAheadMs: number;
  /** Milliseconds the key stays paused (0 when not paused). */
  pausedForMs: number;
}

/**
 * Request and token budgets (GCRA or sliding window) plus a pause, per key. One atomic step per
 * call: either every budget is spent or none.
 */
export interface RateStore {
  /** Spends `cost` if it fits every budget now and the key is not paused. */
  take(key: string, cost: RateCost): Promise<RateTakeResult>;
  /**
   * Charges or refunds tokens of a granted call, once per `adjustment.id`. A charge is taken
   * even when it overdraws the budget (the provider already counted those tokens); later takes
   * wait until it is paid off. Optional for custom stores ({@link RateLimiter.adjust} then
   * throws).
   */
  adjust?(key: string, cost: RateCost, adjustment: RateAdjustment): Promise<void>;
  /** Pauses the key for everyone for `ms` (never shortens a longer pause). */
  pause(key: string, ms: number): Promise<void>;
  /**
   * Reads the budgets without spending them (optional: {@link RateLimiter.budget} needs it).
   * One read-only step.
   */
  peek?(key: string): Promise<RatePeekResult>;
  /** Releases what the store created (connections). */
  close(): Promise<void>;
}
