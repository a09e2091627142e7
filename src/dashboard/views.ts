/**
 * The JSON shapes of the dashboard API. Every string that came from users or servers (task
 * errors, breaker failures) has server addresses and URL credentials redacted; no option that
 * could hold a secret (Redis URLs, the auth token) is ever part of a view.
 */
import { isAzscaleError } from '../core/errors.js';
import type { CircuitBreaker } from '../resilience/circuit.js';
import type { ScalingAssessment } from '../scaling/advisor.js';
import type { HourlySpend } from '../scaling/cost-optimizer.js';
import { redactAddresses } from '../worker/queue.js';
import type { TaskInfo, TaskQueueStats } from '../worker/types.js';

/** A section that could not be read (its backend is down): the rest of the page still shows. */
export interface SectionError {
  /** The azscale error code, `AZS_ERROR` for anything else. */
  code: string;
  /** What went wrong, with addresses redacted. */
  message: string;
}

/** One sample of a queue for the last-hour charts. */
export interface QueueSample {
  /** When, epoch milliseconds. */
  t: number;
  /** Tasks waiting (queued + delayed). */
  depth: number;
  /** Tasks processing. */
  processing: number;
  /** Tasks completed per minute since the previous sample. */
  throughput: number;
}

/** Which optional queue methods a queue has. */
export interface QueueFeatures {
  /** `listTasks` (listing by status). */
  listTasks: boolean;
  /** `pause`, `resume` and `isPaused`. */
  pause: boolean;
  /** `clean`. */
  clean: boolean;
}

/** A queue on the overview and the queue page. */
export interface QueueView {
  /** Queue name. */
  name: string;
  /** Counts by status; absent when `error` is set. */
  stats?: TaskQueueStats;
  /** Whether the queue is paused; `null` when the queue has no pause support. */
  paused: boolean | null;
  /** Samples of the last hour, oldest first. */
  history: QueueSample[];
  /** Which optional queue methods this queue has (listing by status, pause/resume, clean). */
  features: QueueFeatures;
  /** Why the counts could not be read. */
  error?: SectionError;
}

/** A failure that opened a breaker. */
export interface FailureView {
  /** When it was seen, epoch milliseconds. */
  at: number;
  /** Error class name. */
  name: string;
  /** Error message (addresses redacted). */
  message: string;
}

/** A circuit breaker. */
export interface BreakerView {
  /** Breaker name. */
  name: string;
  /** Effective state. */
  state: string;
  /** True when the state is shared through Redis. */
  shared: boolean;
  /** Milliseconds left open (shared breakers). */
  remainingMs?: number;
  /** The failure that last opened it. */
  lastFailure: Omit<FailureView, 'at'> | null;
  /** The last opens seen by this dashboard process (at most 10), newest first. */
  recentFailures: FailureView[];
}

/** A concurrency limiter. */
export interface LimiterView {
  /** Display name (the limiter's key unless named in the options). */
  name: string;
  /** The limit (total weight). */
  concurrency: number;
  /** Slots in use across the fleet (distributed) or in this process. */
  inUse: number | null;
  /** Callers waiting in this process. */
  waiting: number;
  /** True when the limit is shared through Redis. */
  distributed: boolean;
  /** Why `inUse` could not be read. */
  error?: SectionError;
}

/** A rate limiter's budget. */
export interface RateView {
  /** Display name. */
  name: string;
  /** Requests per minute, when set. */
  requestsPerMinute: number | null;
  /** Tokens per minute, when set. */
  tokensPerMinute: number | null;
  /** Requests that may go now. */
  requestsLeft: number | null;
  /** Tokens that may be spent now. */
  tokensLeft: number | null;
  /** Seconds the key stays paused. */
  pausedFor: number;
  /** Why the budget could not be read. */
  error?: SectionError;
}

/** Spend against the hourly budget. */
export interface SpendView {
  /** Dollars allowed per hour. */
  budget: number;
  /** Dollars spent this hour. */
  spent: number;
  /** Dollars left this hour. */
  remaining: number;
  /** The last 24 clock hours, oldest first (the current one last). */
  history: HourlySpend[];
}

/** The advisor's latest verdict. */
export interface AdvisorView {
  /** up, down or hold. */
  scale: string;
  /** horizontal or vertical. */
  direction: string;
  /** Why. */
  reasons: string[];
  /** The main bottleneck, if any. */
  bottleneck: string | null;
  /** When it was assessed, epoch milliseconds. */
  timestampMs: number;
}

/** Latency and traffic from the metrics registry. */
export interface LatencyView {
  /** P95 latency in milliseconds; null when nothing was recorded in the window. */
  p95Ms: number | null;
  /** P50 latency in milliseconds. */
  p50Ms: number | null;
  /** Requests per second over the window. */
  requestRate: number;
  /** Failed share of requests, 0..1. */
  errorRate: number;
}

/** What `GET api/overview` returns. */
export interface OverviewView {
  /** When the snapshot was taken, epoch milliseconds. */
  generatedAt: number;
  /** The advisor's latest verdict; null without `advisor` or before its first assessment. */
  advisor: AdvisorView | SectionError | null;
  /** Spend against the budget; null without `optimizer`. */
  spend: SpendView | SectionError | null;
  /** Latency and traffic; null without `metrics`. */
  latency: LatencyView | null;
  /** Every queue shown. */
  queues: QueueView[];
  /** Every breaker shown. */
  breakers: BreakerView[];
  /** Every concurrency limiter shown. */
  limiters: LimiterView[];
  /** Every rate limiter shown. */
  rateLimiters: RateView[];
}

/** A task on the queue page: every field of `TaskInfo` (errors redacted), plus record fields. */
export interface TaskView extends Record<string, unknown> {
  /** The task id. */
  id: string;
  /** Its status. */
  status: string;
}

/** An error as a section error (messages redacted; foreign errors reduced to their class). */
export function sectionError(e: unknown): SectionError {
  if (isAzscaleError(e)) return { code: e.code, message: redactAddresses(e.message) };
  return { code: 'AZS_ERROR', message: e instanceof Error ? redactAddresses(e.message) : 'error' };
}

/** An error as a failure entry (name and redacted message only: no stack, no context). */
export function failureOf(e: unknown): Omit<FailureView, 'at'> {
  if (e instanceof Error) {
    return { name: e.name.slice(0, 100), message: redactAddresses(e.message).slice(0, 2000) };
  }
  return { name: 'Error', message: redactAddresses(String(e)).slice(0, 2000) };
}

/** A breaker's view. */
export function breakerView(b: CircuitBreaker, recent: FailureView[]): BreakerView {
  const snap = b.toJSON();
  return {
    name: b.name,
    state: snap.state,
    shared: b.isShared,
    ...(snap.shared ? { remainingMs: snap.shared.remainingMs } : {}),
    lastFailure: b.lastFailure === undefined ? null : failureOf(b.lastFailure),
    recentFailures: recent,
  };
}

/** The advisor's verdict, without its raw signals. */
export function advisorView(a: ScalingAssessment): AdvisorView {
  return {
    scale: a.scale,
    direction: a.direction,
    reasons: a.reasons,
    bottleneck: a.bottleneck,
    timestampMs: a.timestampMs,
  };
}

/**
 * A task as JSON: every field the queue gives, with error text redacted. Task data and results
 * are user data and are shown as they are: the page renders them as text, never as markup.
 */
export function taskView(t: TaskInfo): TaskView {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) {
    out[k] = typeof v === 'string' && /error/i.test(k) ? redactAddresses(v) : v;
  }
  return out as TaskView;
}
