import { ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { type CounterHandle, type MetricsSink, noopMetrics } from '../core/metrics.js';
import { assertFunction, assertNumber, assertObject } from '../core/validate.js';
import { MAX_DURATION_SECONDS } from '../core/timers.js';
import { assertQuantity } from './util.js';

/**
 * When to scale, and which way: the seed's "When to Scale" indicators and its "Scaling Decision
 * Matrix", with sustained-signal and hysteresis rules so the advice never flaps.
 */

/** What the advisor recommends. */
export type ScaleAdvice = 'up' | 'down' | 'hold';
/** Which way to scale: more instances (`horizontal`) or bigger ones (`vertical`). */
export type ScaleDirection = 'horizontal' | 'vertical';
/** The rows of the seed's decision matrix. */
export type Bottleneck = 'cpu' | 'memory' | 'io' | 'network' | 'llm-rate-limit';
/** The indicators the advisor evaluates. */
export type ScalingIndicator =
  | 'p95-latency'
  | 'cpu'
  | 'memory'
  | 'error-rate'
  | 'queue-growth'
  | 'llm-rate-limit'
  | 'io-wait'
  | 'network';

/**
 * Scale-up thresholds. The first four are the seed's "When to Scale" numbers; every one can be
 * overridden. Fractions are 0..1 (0.7 = 70 %).
 */
export interface ScalingThresholds {
  /** P95 response time above which to scale, in milliseconds. The seed's "> 2s (P95)". @default 2000 */
  p95LatencyMs: number;
  /** CPU utilisation (fraction) that, sustained for `cpuSustainSeconds`, means scale. @default 0.7 */
  cpu: number;
  /** Memory utilisation (fraction) above which to scale. @default 0.8 */
  memory: number;
  /** Error rate (fraction of requests) above which to scale. @default 0.01 */
  errorRate: number;
  /** Fraction of LLM calls answered 429 (rate limited) above which to scale. @default 0.01 */
  llmRateLimitRate: number;
  /** Fraction of time waiting on I/O that marks the bottleneck as I/O. @default 0.2 */
  ioWait: number;
  /** Network link utilisation (fraction) above which the service is network bound. @default 0.8 */
  network: number;
  /** How many of the most recent queue-depth samples the trend is fitted over. @default 10 */
  queueTrendSamples: number;
  /** Fewest queue-depth samples needed to call a trend at all. @default 3 */
  queueMinSamples: number;
  /**
   * Least-squares slope (items per sample) above which the queue counts as growing.
   * @default 0
   */
  queueGrowthPerSample: number;
}

/** The defaults of {@link ScalingThresholds}, frozen. The seed's numbers come first. */
export const DEFAULT_SCALING_THRESHOLDS: Readonly<ScalingThresholds> = Object.freeze({
  p95LatencyMs: 2000,
  cpu: 0.7,
  memory: 0.8,
  errorRate: 0.01,
  llmRateLimitRate: 0.01,
  ioWait: 0.2,
  network: 0.8,
  queueTrendSamples: 10,
  queueMinSamples: 3,
  queueGrowthPerSample: 0,
});

/**
 * One observation of the service, e.g. from the observability module or given by hand. Every
 * field is optional: the advisor judges what it is given. Fractions are 0..1.
 */
export interface ScalingSnapshot {
  /** P95 response time over your measurement window, in milliseconds. */
  p95LatencyMs?: number;
  /** CPU utilisation of the limit, 0..1. */
  cpu?: number;
  /** Memory utilisation of the limit, 0..1. */
  memory?: number;
  /** Fraction of requests that failed, 0..1. */
  errorRate?: number;
  /**
   * Queue depth: the current depth (the advisor keeps the history across calls) or a history,
   * oldest first.
   */
  queueDepth?: number | readonly number[];
  /** Queue depth history, oldest first (same as passing an array as `queueDepth`). */
  queueDepthHistory?: readonly number[];
  /** Fraction of LLM calls answered 429, 0..1. */
  llmRateLimitRate?: number;
  /** Fraction of time spent waiting on I/O, 0..1. */
  ioWait?: number;
  /** Network link utilisation, 0..1. */
  networkUtilization?: number;
  /** Instances running now; decides "initially" in the matrix's CPU row. */
  replicas?: number;
  /** Most instances allowed; at this count horizontal scaling is exhausted. */
  maxReplicas?: number;
  /** Whether a bigger instance size is available. @default true */
  canScaleVertically?: boolean;
  /** When the snapshot was taken, epoch milliseconds. @default the advisor's clock */
  timestampMs?: number;
}

/** One indicator as the advisor saw it. */
export interface ScalingSignal {
  /** Which indicator. */
  indicator: ScalingIndicator;
  /** The observed value (the slope, for `queue-growth`). */
  value: number;
  /** The threshold it was compared with. */
  threshold: number;
  /** True when this indicator asks for a scale-up. */
  firing: boolean;
}

/** The advisor's answer. */
export interface ScalingAssessment {
  /** Scale up, down, or hold. */
  scale: ScaleAdvice;
  /** Horizontal (instances) or vertical (size), from the seed's decision matrix. */
  direction: ScaleDirection;
  /** Human-readable reasons, one per indicator that decided the advice. */
  reasons: string[];
  /** The main bottleneck when scaling up; `null` otherwise or when it cannot be told. */
  bottleneck: Bottleneck | null;
  /** Every bottleneck found, most decisive first. */
  bottlenecks: Bottleneck[];
  /** Every indicator evaluated for this snapshot. */
  signals: ScalingSignal[];
  /** Time of the snapshot, epoch milliseconds. */
  timestampMs: number;
}

/** Options of {@link ScalingAdvisor}. */
export interface ScalingAdvisorOptions {
  /** Overrides of {@link DEFAULT_SCALING_THRESHOLDS}. */
  thresholds?: Partial<ScalingThresholds>;
  /**
   * Seconds CPU must stay above `thresholds.cpu`, on every sample, to count as "sustained"
   * (the seed's "CPU usage > 70% sustained"). 60 s matches the seed's HPA scale-up window.
   * `0` accepts a single sample.
   * @default 60
   */
  cpuSustainSeconds?: number;
  /**
   * Seconds every indicator must stay low before a scale-down is advised, and the wait between
   * two scale-down advices. The seed's HPA `scaleDown.stabilizationWindowSeconds`.
   * @default 300
   */
  scaleDownStabilizationSeconds?: number;
  /**
   * "Low" means below this fraction of each threshold (0.5: CPU < 35 %, memory < 40 %, P95 <
   * 1 s, ...). The gap between the low mark and the threshold is the hysteresis band.
   * @default 0.5
   */
  scaleDownRatio?: number;
  /**
   * CPU-bound services scale vertically "initially" (the matrix): while running at most this
   * many replicas, and horizontally after.
   * @default 1
   */
  verticalMaxReplicas?: number;
  /** Clock in epoch milliseconds, for snapshots without `timestampMs`. @default Date.now */
  now?: () => number;
  /** Where to report `scaling_advice_total{scale}`. @default noopMetrics */
  metrics?: MetricsSink;
}

/** Events of {@link ScalingAdvisor}. */
export type ScalingAdvisorEvents = {
  /** Every assessment. */
  assessed: (assessment: ScalingAssessment) => void;
};

const FRACTIONS = [
  'cpu',
  'memory',
  'errorRate',
  'llmRateLimitRate',
  'ioWait',
  'networkUtilization',
] as const;

const pct = (v: number) => `${+(v * 100).toFixed(2)}%`;

/**
 * Advises `up`, `down` or `hold` from snapshots of the service's metrics, and says which way
 * (horizontal/vertical) and why. Stateful: call {@link ScalingAdvisor.assess} at a regular
 * cadence (e.g. every 15 s) with the latest snapshot.
 *
 * Rules:
 * - Up when any indicator fires: P95 latency, error rate, memory, LLM 429 rate or network over
 *   their thresholds; CPU over its threshold on every sample for `cpuSustainSeconds`; the queue
 *   depth trending up.
 * - Down only when every indicator has stayed below `scaleDownRatio` x its threshold for
 *   `scaleDownStabilizationSeconds`, and no sooner than that after the previous down advice.
 * - Otherwise hold.
 *
 * @example
 * const advisor = new ScalingAdvisor({ thresholds: { p95LatencyMs: 1500 } });
 * const { scale, direction, bottleneck, reasons } = advisor.assess({ p95LatencyMs: 2300, cpu: 0.3 });
 */
export class ScalingAdvisor {
  /** The effective thresholds, frozen. */
  readonly thresholds: Readonly<ScalingThresholds>;
  private readonly cpuSustainMs: number;
  private readonly downWindowMs: number;
  private readonly downRatio: number;
  private readonly verticalMaxReplicas: number;
  private readonly now: () => number;
  private readonly emitter = new Emitter<ScalingAdvisorEvents>();
  private readonly counters: Record<ScaleAdvice, CounterHandle>;

  private cpuHighSince: number | undefined;
  private queueSamples: number[] = [];
  private lowSince: number | undefined;
  private lastT: number | undefined;

  constructor(options: ScalingAdvisorOptions = {}) {
    assertObject(options, 'options');
    const given = assertObject(options.thresholds, 'thresholds', true) ?? {};
    const t: ScalingThresholds = { ...DEFAULT_SCALING_THRESHOLDS };
    for (const [k, v] of Object.entries(given)) {
      // Own keys only: `constructor` or `toString` are unknown thresholds, not inherited ones.
      if (!Object.hasOwn(DEFAULT_SCALING_THRESHOLDS, k)) {
        throw new ValidationError(
          `thresholds.${k} is not a known threshold (known: ${Object.keys(DEFAULT_SCALING_THRESHOLDS).join(', ')})`,
          { option: `thresholds.${k}` },
        );
      }
      if (v === undefined) continue;
      (t as unknown as Record<string, number>)[k] = v as number;
    }
    assertNumber(t.p95LatencyMs, 'thresholds.p95LatencyMs', { positive: true });
    for (const k of [
      'cpu',
      'memory',
      'errorRate',
      'llmRateLimitRate',
      'ioWait',
      'network',
    ] as const) {
      assertNumber(t[k], `thresholds.${k}`, { positive: true, max: 1 });
    }
    // The advisor keeps this many samples: bounded, so a typo cannot grow it without end.
    assertNumber(t.queueTrendSamples, 'thresholds.queueTrendSamples', {
      integer: true,
      min: 2,
      max: 10_000,
    });
    assertNumber(t.queueMinSamples, 'thresholds.queueMinSamples', {
      integer: true,
      min: 2,
      max: t.queueTrendSamples,
    });
    assertNumber(t.queueGrowthPerSample, 'thresholds.queueGrowthPerSample', { min: 0 });
    this.thresholds = Object.freeze(t);
    this.cpuSustainMs =
      assertQuantity(options.cpuSustainSeconds ?? 60, 'cpuSustainSeconds', 'seconds', {
        min: 0,
        max: MAX_DURATION_SECONDS,
      }) * 1000;
    this.downWindowMs =
      assertQuantity(
        options.scaleDownStabilizationSeconds ?? 300,
        'scaleDownStabilizationSeconds',
        'seconds',
        { min: 0, max: MAX_DURATION_SECONDS },
      ) * 1000;
    this.downRatio = assertNumber(options.scaleDownRatio ?? 0.5, 'scaleDownRatio', {
      positive: true,
      max: 1,
    });
    this.verticalMaxReplicas = assertNumber(
      options.verticalMaxReplicas ?? 1,
      'verticalMaxReplicas',
      {
        integer: true,
        min: 0,
      },
    );
    this.now = options.now === undefined ? () => Date.now() : assertFunction(options.now, 'now');
    const metrics = options.metrics ?? noopMetrics;
    this.counters = {
      up: metrics.counter('scaling_advice_total', { scale: 'up' }),
      down: metrics.counter('scaling_advice_total', { scale: 'down' }),
      hold: metrics.counter('scaling_advice_total', { scale: 'hold' }),
    };
  }

  /** Adds a listener; returns a disposer. */
  on<K extends keyof ScalingAdvisorEvents>(event: K, listener: ScalingAdvisorEvents[K]): Disposer {
    return this.emitter.on(event, listener);
  }

  /** Forgets every sample and streak (e.g. after you applied a scaling action yourself). */
  reset(): void {
    this.cpuHighSince = undefined;
    this.queueSamples = [];
    this.lowSince = undefined;
    this.lastT = undefined;
  }

  /**
   * Judges one snapshot (and the history of earlier ones).
   * @throws ValidationError naming the snapshot field that is out of range.
   */
  assess(snapshot: ScalingSnapshot): ScalingAssessment {
    const s = validateSnapshot(snapshot);
    const th = this.thresholds;
    const now = s.timestampMs ?? this.now();
    if (!Number.isFinite(now)) {
      throw new ValidationError(
        `now() must return epoch milliseconds, received ${describeValue(now)}`,
        {
          option: 'now',
        },
      );
    }
    if (this.lastT !== undefined && now < this.lastT) {
      throw new ValidationError(
        `snapshot.timestampMs ${now} is older than the previous snapshot (${this.lastT})`,
        { option: 'snapshot.timestampMs' },
      );
    }
    this.lastT = now;

    const signals: ScalingSignal[] = [];
    const fired: string[] = [];
    const notes: string[] = [];
    const sig = (
      indicator: ScalingIndicator,
      value: number,
      threshold: number,
      firing: boolean,
    ) => {
      signals.push({ indicator, value, threshold, firing });
      return firing;
    };

    const latencyHigh =
      s.p95LatencyMs !== undefined &&
      sig('p95-latency', s.p95LatencyMs, th.p95LatencyMs, s.p95LatencyMs > th.p95LatencyMs);
    if (latencyHigh) fired.push(`p95 latency ${s.p95LatencyMs} ms > ${th.p95LatencyMs} ms`);

    // CPU: sustained means above the threshold on every sample of the last cpuSustainSeconds.
    let cpuSustained = false;
    let cpuNow = false;
    if (s.cpu !== undefined) {
      cpuNow = s.cpu > th.cpu;
      // Only the start of the current run of high samples matters: O(1) state, exact at any
      // sampling rate.
      if (!cpuNow) this.cpuHighSince = undefined;
      else this.cpuHighSince ??= now;
      const streakStart = this.cpuHighSince;
      const heldMs = streakStart === undefined ? -1 : now - streakStart;
      cpuSustained = sig('cpu', s.cpu, th.cpu, heldMs >= this.cpuSustainMs);
      if (cpuSustained) {
        fired.push(`cpu ${pct(s.cpu)} > ${pct(th.cpu)} sustained for ${heldMs / 1000} s`);
      } else if (cpuNow) {
        notes.push(
          `cpu ${pct(s.cpu)} > ${pct(th.cpu)} for ${heldMs / 1000} s, not yet sustained (${this.cpuSustainMs / 1000} s needed)`,
        );
      }
    }

    const memoryHigh =
      s.memory !== undefined && sig('memory', s.memory, th.memory, s.memory > th.memory);
    if (memoryHigh) fired.push(`memory ${pct(s.memory as number)} > ${pct(th.memory)}`);

    const errorsHigh =
      s.errorRate !== undefined &&
      sig('error-rate', s.errorRate, th.errorRate, s.errorRate > th.errorRate);
    if (errorsHigh) fired.push(`error rate ${pct(s.errorRate as number)} > ${pct(th.errorRate)}`);

    // Queue: a positive least-squares trend over the recent samples, ending above where it began,
    // rising on most steps (one noisy uptick on a flat queue is not a trend).
    let queueGrowing = false;
    const series = this.queueSeries(s);
    if (series && series.length >= th.queueMinSamples) {
      const win = series.slice(-th.queueTrendSamples);
      const slope = lsSlope(win);
      let rises = 0;
      let falls = 0;
      for (let i = 1; i < win.length; i++) {
        const d = (win[i] as number) - (win[i - 1] as number);
        if (d > 0) rises++;
        else if (d < 0) falls++;
      }
      const growing =
        slope > th.queueGrowthPerSample &&
        (win[win.length - 1] as number) > (win[0] as number) &&
        rises > falls &&
        rises * 2 > win.length - 1;
      queueGrowing = sig('queue-growth', slope, th.queueGrowthPerSample, growing);
      if (queueGrowing) {
        fired.push(
          `queue depth growing: ${win[0]} -> ${win[win.length - 1]} over ${win.length} samples (slope ${+slope.toFixed(3)}/sample)`,
        );
      }
    }

    const llmLimited =
      s.llmRateLimitRate !== undefined &&
      sig(
        'llm-rate-limit',
        s.llmRateLimitRate,
        th.llmRateLimitRate,
        s.llmRateLimitRate > th.llmRateLimitRate,
      );
    if (llmLimited) {
      fired.push(`LLM 429 rate ${pct(s.llmRateLimitRate as number)} > ${pct(th.llmRateLimitRate)}`);
    }

    const networkHigh =
      s.networkUtilization !== undefined &&
      sig('network', s.networkUtilization, th.network, s.networkUtilization > th.network);
    if (networkHigh) {
      fired.push(`network ${pct(s.networkUtilization as number)} > ${pct(th.network)}`);
    }

    // I/O wait classifies the bottleneck; on its own it does not ask for more capacity.
    let ioHigh = false;
    if (s.ioWait !== undefined) {
      ioHigh = s.ioWait > th.ioWait;
      signals.push({ indicator: 'io-wait', value: s.ioWait, threshold: th.ioWait, firing: false });
    }

    const up =
      latencyHigh ||
      cpuSustained ||
      memoryHigh ||
      errorsHigh ||
      queueGrowing ||
      llmLimited ||
      networkHigh;

    let scale: ScaleAdvice;
    const reasons: string[] = [];
    let bottlenecks: Bottleneck[] = [];
    let direction: ScaleDirection = 'horizontal';

    if (up) {
      this.lowSince = undefined;
      scale = 'up';
      reasons.push(...fired);
      if (llmLimited) bottlenecks.push('llm-rate-limit');
      if (memoryHigh) bottlenecks.push('memory');
      if (cpuSustained) bottlenecks.push('cpu');
      if (networkHigh) bottlenecks.push('network');
      if (ioHigh) {
        bottlenecks.push('io');
        reasons.push(`io wait ${pct(s.ioWait as number)} > ${pct(th.ioWait)}`);
      }
      if (bottlenecks.length === 0 && (latencyHigh || queueGrowing)) {
        // Slow or backed up without a saturated resource: the work is waiting, which for an LLM
        // service means I/O (the seed: "LLM applications are I/O bound"). A busy CPU that is not
        // yet sustained still points at the CPU.
        if (cpuNow) bottlenecks.push('cpu');
        else if (s.cpu !== undefined) bottlenecks.push('io');
      }
      bottlenecks = [...new Set(bottlenecks)];
      direction = this.directionFor(bottlenecks[0], s);
    } else {
      const low = this.isLow(s, series);
      if (!low) {
        this.lowSince = undefined;
        scale = 'hold';
        reasons.push(...notes);
        if (reasons.length === 0) reasons.push('all indicators within thresholds');
      } else {
        this.lowSince ??= now;
        const heldMs = now - this.lowSince;
        if (heldMs >= this.downWindowMs) {
          scale = 'down';
          reasons.push(
            `every indicator below ${pct(this.downRatio)} of its threshold for ${heldMs / 1000} s (stabilisation ${this.downWindowMs / 1000} s)`,
          );
          // The next scale-down needs a fresh full window: one quiet period, one step down.
          this.lowSince = now;
          direction = s.replicas === 1 ? 'vertical' : 'horizontal';
        } else {
          scale = 'hold';
          reasons.push(
            `low load for ${heldMs / 1000} s; scale-down waits for ${this.downWindowMs / 1000} s of stabilisation`,
          );
        }
      }
    }

    const result: ScalingAssessment = {
      scale,
      direction,
      reasons,
      bottleneck: scale === 'up' ? (bottlenecks[0] ?? null) : null,
      bottlenecks: scale === 'up' ? bottlenecks : [],
      signals,
      timestampMs: now,
    };
    this.counters[scale].inc();
    this.emitter.emit('assessed', result);
    return result;
  }

  /** The seed's decision matrix: which way to scale for a bottleneck. */
  private directionFor(b: Bottleneck | undefined, s: ScalingSnapshot): ScaleDirection {
    const vertical = s.canScaleVertically !== false;
    const horizontalExhausted =
      s.replicas !== undefined && s.maxReplicas !== undefined && s.replicas >= s.maxReplicas;
    switch (b) {
      case 'cpu':
        // "✓ Initially" vertical, "✓ Long-term" horizontal.
        if (vertical && ((s.replicas ?? 1) <= this.verticalMaxReplicas || horizontalExhausted)) {
          return 'vertical';
        }
        return 'horizontal';
      case 'memory':
        // Vertical "✓ Good", horizontal "✓ Better": vertical only when horizontal is used up.
        return vertical && horizontalExhausted ? 'vertical' : 'horizontal';
      default:
        // I/O "✗ Limited", network "✗ Limited", LLM rate limits "✗ No help" vertically.
        return 'horizontal';
    }
  }

  private isLow(s: ScalingSnapshot, series: readonly number[] | undefined): boolean {
    const th = this.thresholds;
    const r = this.downRatio;
    // Without any load metric there is nothing to say the service is idle.
    if (
      s.cpu === undefined &&
      s.memory === undefined &&
      s.p95LatencyMs === undefined &&
      s.networkUtilization === undefined
    ) {
      return false;
    }
    if (s.cpu !== undefined && s.cpu >= th.cpu * r) return false;
    if (s.memory !== undefined && s.memory >= th.memory * r) return false;
    if (s.p95LatencyMs !== undefined && s.p95LatencyMs >= th.p95LatencyMs * r) return false;
    if (s.errorRate !== undefined && s.errorRate > th.errorRate * r) return false;
    if (s.llmRateLimitRate !== undefined && s.llmRateLimitRate > th.llmRateLimitRate * r) {
      return false;
    }
    if (s.networkUtilization !== undefined && s.networkUtilization >= th.network * r) return false;
    if (s.ioWait !== undefined && s.ioWait >= th.ioWait * r) return false;
    if (series && series.length >= 2) {
      const win = series.slice(-th.queueTrendSamples);
      if (lsSlope(win) > 0) return false;
    }
    return true;
  }

  private queueSeries(s: ScalingSnapshot): readonly number[] | undefined {
    if (s.queueDepthHistory !== undefined) return s.queueDepthHistory;
    if (Array.isArray(s.queueDepth)) return s.queueDepth as readonly number[];
    if (typeof s.queueDepth === 'number') {
      this.queueSamples.push(s.queueDepth);
      if (this.queueSamples.length > this.thresholds.queueTrendSamples) this.queueSamples.shift();
      return this.queueSamples;
    }
    return undefined;
  }
}

function lsSlope(ys: readonly number[]): number {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  let my = 0;
  for (const y of ys) my += y;
  my /= n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (i - mx) * ((ys[i] as number) - my);
    den += (i - mx) ** 2;
  }
  return num / den;
}

function validateSnapshot(snapshot: ScalingSnapshot): ScalingSnapshot {
  const s = assertObject(snapshot, 'snapshot') as ScalingSnapshot;
  for (const k of FRACTIONS) {
    if (s[k] !== undefined)
      assertQuantity(s[k], `snapshot.${k}`, 'fraction 0..1', { min: 0, max: 1 });
  }
  if (s.p95LatencyMs !== undefined) {
    assertQuantity(s.p95LatencyMs, 'snapshot.p95LatencyMs', 'milliseconds', { min: 0 });
  }
  if (s.timestampMs !== undefined) assertNumber(s.timestampMs, 'snapshot.timestampMs');
  if (s.replicas !== undefined) {
    assertNumber(s.replicas, 'snapshot.replicas', { integer: true, min: 0 });
  }
  if (s.maxReplicas !== undefined) {
    assertNumber(s.maxReplicas, 'snapshot.maxReplicas', { integer: true, min: 0 });
  }
  if (s.canScaleVertically !== undefined && typeof s.canScaleVertically !== 'boolean') {
    throw new ValidationError(
      `snapshot.canScaleVertically must be a boolean, received ${describeValue(s.canScaleVertically)}`,
      { option: 'snapshot.canScaleVertically' },
    );
  }
  const checkSeries = (v: unknown, name: string) => {
    if (!Array.isArray(v)) {
      throw new ValidationError(
        `${name} must be an array of numbers, received ${describeValue(v)}`,
        {
          option: name,
        },
      );
    }
    for (const [i, x] of v.entries()) assertNumber(x, `${name}[${i}]`, { min: 0 });
  };
  if (s.queueDepthHistory !== undefined)
    checkSeries(s.queueDepthHistory, 'snapshot.queueDepthHistory');
  if (s.queueDepth !== undefined) {
    if (Array.isArray(s.queueDepth)) checkSeries(s.queueDepth, 'snapshot.queueDepth');
    else assertNumber(s.queueDepth, 'snapshot.queueDepth', { min: 0 });
  }
  return s;
}
