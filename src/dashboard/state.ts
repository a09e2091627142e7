import type { Disposer } from '../core/events.js';
import { type CircuitBreaker, listCircuitBreakers } from '../resilience/circuit.js';
import type { ScalingAssessment } from '../scaling/advisor.js';
import type { HourlySpend } from '../scaling/cost-optimizer.js';
import type { TaskQueue } from '../worker/queue.js';
import type { TaskQueueStats } from '../worker/types.js';
import type { Entry, ResolvedOptions } from './options.js';
import { queueFeatures } from './queue-api.js';
import { Cached, Ring } from './ring.js';
import {
  type BreakerView,
  type FailureView,
  type LatencyView,
  type LimiterView,
  type OverviewView,
  type QueueSample,
  type QueueView,
  type RateView,
  type SpendView,
  advisorView,
  breakerView,
  failureOf,
  sectionError,
} from './views.js';

/** Optional queue capabilities (issue 17); a queue without them shows `paused: null`. */
interface Pausable {
  isPaused(): Promise<boolean>;
}

function pausable(q: TaskQueue): q is TaskQueue & Pausable {
  return typeof (q as Partial<Pausable>).isPaused === 'function';
}

const HOUR_MS = 3_600_000;
// Past hours of spend change only when a late write lands; re-read them once a minute.
const SPEND_HISTORY_TTL_MS = 60_000;
const RECENT_FAILURES = 10;
const MAX_TRACKED_BREAKERS = 1000;

/** One queue's live state: stats read at most once per refresh, sampled for the charts. */
export class QueueState {
  readonly stats: Cached<TaskQueueStats>;
  readonly paused: Cached<boolean | null>;
  readonly ring: Ring<QueueSample>;
  private prevCompleted: { t: number; n: number } | undefined;

  constructor(
    readonly queue: TaskQueue,
    refreshMs: number,
    sampleMs: number,
  ) {
    this.stats = new Cached(refreshMs, () => queue.stats());
    this.paused = new Cached(refreshMs, async () =>
      pausable(queue) ? await queue.isPaused() : null,
    );
    this.ring = new Ring(Math.ceil(HOUR_MS / sampleMs) + 1);
  }

  /** Forgets the cached reads (after an action changed the queue). */
  invalidate(): void {
    this.stats.invalidate();
    this.paused.invalidate();
  }

  async sample(): Promise<void> {
    const s = await this.stats.get();
    const t = Date.now();
    const prev = this.prevCompleted;
    const throughput =
      prev && t > prev.t ? Math.max(0, ((s.completed - prev.n) * 60_000) / (t - prev.t)) : 0;
    this.prevCompleted = { t, n: s.completed };
    if (prev)
      this.ring.push({ t, depth: s.queued + s.delayed, processing: s.processing, throughput });
  }

  async view(): Promise<QueueView> {
    const history = this.ring.toArray();
    const features = queueFeatures(this.queue);
    try {
      const [stats, paused] = await Promise.all([this.stats.get(), this.paused.get()]);
      return { name: this.queue.name, stats, paused, history, features };
    } catch (e) {
      return { name: this.queue.name, paused: null, history, features, error: sectionError(e) };
    }
  }
}

/** Everything the dashboard reads, cached per refresh interval and sampled in the background. */
export class FleetState {
  readonly queues = new Map<string, QueueState>();
  private readonly overview: Cached<OverviewView>;
  private readonly spendHistory: Cached<HourlySpend[]> | undefined;
  private readonly failures = new Map<CircuitBreaker, { ring: Ring<FailureView>; off: Disposer }>();
  private lastAssessment: ScalingAssessment | undefined;
  private lastAssessedAt = 0;
  private readonly disposers: Disposer[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(private readonly o: ResolvedOptions) {
    for (const q of o.queues) this.queues.set(q.name, new QueueState(q, o.refreshMs, o.sampleMs));
    this.overview = new Cached(o.refreshMs, () => this.readOverview());
    const opt = o.optimizer;
    if (opt) this.spendHistory = new Cached(SPEND_HISTORY_TTL_MS, () => opt.hourlySpend(24));
    if (o.advisor) {
      this.disposers.push(
        o.advisor.on('assessed', (a) => {
          this.lastAssessment = a;
          this.lastAssessedAt = Date.now();
        }),
      );
    }
    this.timer = setInterval(() => void this.sample(), o.sampleMs);
    this.timer.unref();
    void this.sample();
  }

  /** The overview, read at most once per refresh interval whatever the number of pages. */
  getOverview(): Promise<OverviewView> {
    return this.overview.get();
  }

  /** Forgets cached reads after an action, so the next refresh shows its effect. */
  touched(q?: QueueState): void {
    q?.invalidate();
    this.overview.invalidate();
  }

  /** The breakers shown (the registry's, read anew each time, or the configured ones). */
  breakers(): Entry<CircuitBreaker>[] {
    const list =
      this.o.breakers === 'registry'
        ? listCircuitBreakers().map((b) => ({ name: b.name, value: b }))
        : this.o.breakers;
    for (const { value: b } of list) this.track(b);
    return list;
  }

  breakerViews(): BreakerView[] {
    return this.breakers().map(({ value: b }) =>
      breakerView(b, this.failures.get(b)?.ring.toArray().reverse() ?? []),
    );
  }

  async limiterViews(): Promise<LimiterView[]> {
    return Promise.all(
      this.o.limiters.map(async ({ name, value: l }): Promise<LimiterView> => {
        const base = {
          name,
          concurrency: l.concurrency,
          waiting: l.pendingCount,
          distributed: l.distributed,
        };
        try {
          return { ...base, inUse: await l.inFlight() };
        } catch (e) {
          return { ...base, inUse: null, error: sectionError(e) };
        }
      }),
    );
  }

  async rateViews(): Promise<RateView[]> {
    return Promise.all(
      this.o.rateLimiters.map(async ({ name, value: r }): Promise<RateView> => {
        const base = {
          name,
          requestsPerMinute: r.requestsPerMinute ?? null,
          tokensPerMinute: r.tokensPerMinute ?? null,
        };
        try {
          return { ...base, ...(await r.budget()) };
        } catch (e) {
          return {
            ...base,
            requestsLeft: null,
            tokensLeft: null,
            pausedFor: 0,
            error: sectionError(e),
          };
        }
      }),
    );
  }

  private async readOverview(): Promise<OverviewView> {
    const [queues, limiters, rateLimiters, spend] = await Promise.all([
      Promise.all([...this.queues.values()].map((q) => q.view())),
      this.limiterViews(),
      this.rateViews(),
      this.spend(),
    ]);
    return {
      generatedAt: Date.now(),
      advisor: this.advice(),
      spend,
      latency: this.latency(),
      queues,
      breakers: this.breakerViews(),
      limiters,
      rateLimiters,
    };
  }

  private async spend(): Promise<SpendView | ReturnType<typeof sectionError> | null> {
    const opt = this.o.optimizer;
    if (!opt || !this.spendHistory) return null;
    try {
      const [spent, past] = await Promise.all([opt.currentSpend(), this.spendHistory.get()]);
      const hourStartMs = opt.hourStartMs();
      // The cached history may predate the turn of the hour: rebuild the window around now.
      const byHour = new Map(past.map((h) => [h.hourStartMs, h.total]));
      byHour.set(hourStartMs, spent);
      const history = Array.from({ length: 24 }, (_, i) => {
        const start = hourStartMs - (23 - i) * HOUR_MS;
        return { hourStartMs: start, total: byHour.get(start) ?? 0 };
      });
      return {
        budget: opt.hourlyBudget,
        spent,
        remaining: Math.max(0, opt.hourlyBudget - spent),
        history,
      };
    } catch (e) {
      return sectionError(e);
    }
  }

  private advice(): OverviewView['advisor'] {
    const { advisor, metrics } = this.o;
    if (!advisor) return null;
    const stale = Date.now() - Math.max(this.lastAssessedAt, this.startedAt) > 2 * this.o.refreshMs;
    if (metrics && (!this.lastAssessment || stale)) {
      try {
        advisor.assess(metrics.snapshot());
      } catch (e) {
        return sectionError(e);
      }
    }
    return this.lastAssessment ? advisorView(this.lastAssessment) : null;
  }

  private latency(): LatencyView | null {
    const m = this.o.metrics;
    if (!m) return null;
    const s = m.snapshot();
    return {
      p95Ms: s.p95LatencyMs ?? null,
      p50Ms: s.p50LatencyMs ?? null,
      requestRate: s.requestRate,
      errorRate: s.errorRate,
    };
  }

  private track(b: CircuitBreaker): void {
    if (this.failures.has(b) || this.failures.size >= MAX_TRACKED_BREAKERS) return;
    const ring = new Ring<FailureView>(RECENT_FAILURES);
    const off = b.onOpen(({ error }) => {
      if (error !== undefined) ring.push({ at: Date.now(), ...failureOf(error) });
    });
    this.failures.set(b, { ring, off });
  }

  private async sample(): Promise<void> {
    // A failed sample leaves a gap in the chart; the page shows the section's error.
    await Promise.all([...this.queues.values()].map((q) => q.sample().catch(() => {})));
  }

  close(): void {
    clearInterval(this.timer);
    for (const d of this.disposers) d();
    for (const { off } of this.failures.values()) off();
    this.failures.clear();
  }
}
