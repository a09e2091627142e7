/**
 * The storage of the metrics module: one cell per series (counter, gauge, histogram), families
 * grouping the series of one name, and the validation of names, labels and buckets.
 */
import { ValidationError, describeValue } from '../core/errors.js';
import type { CounterHandle, GaugeHandle, HistogramHandle, Labels } from '../core/metrics.js';
import { assertObject } from '../core/validate.js';
import type { GaugeCallback, MetricKind } from './metrics-types.js';
import type { WindowedSketch } from './sketch.js';

export const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
export const QUANTILES = [0.5, 0.95, 0.99] as const;

export function badValue(metric: string, what: string, value: unknown): ValidationError {
  return new ValidationError(`${metric}: value must be ${what}, received ${describeValue(value)}`, {
    option: 'value',
    context: { metric },
  });
}

export class CounterCell implements CounterHandle {
  value = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
  ) {}
  inc(value = 1): void {
    // One comparison pair rejects NaN, negatives and Infinity alike.
    if (!(value >= 0 && value < Number.POSITIVE_INFINITY)) {
      throw badValue(this.metric, 'a finite number >= 0', value);
    }
    this.value += value;
  }
}

export class GaugeCell implements GaugeHandle {
  value = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
  ) {}
  set(value: number): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value = value;
  }
  inc(value = 1): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value += value;
  }
  dec(value = 1): void {
    if (typeof value !== 'number' || Number.isNaN(value))
      throw badValue(this.metric, 'a number', value);
    this.value -= value;
  }
}

export interface CallbackCell {
  labels: Labels;
  fn: GaugeCallback;
  /** Last value a callback gave (async callbacks are read by the sync snapshot this way). */
  last: number | undefined;
}

export class HistogramCell implements HistogramHandle {
  /** Non-cumulative count per `le` bound; the `+Inf` bucket is `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly metric: string,
    private readonly bounds: Float64Array,
    readonly window: WindowedSketch,
    private readonly now: () => number,
  ) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!(value >= 0 && value < Number.POSITIVE_INFINITY)) {
      throw badValue(this.metric, 'a finite number >= 0', value);
    }
    this.sum += value;
    this.count++;
    const b = this.bounds;
    const n = b.length;
    let i = 0;
    while (i < n && value > b[i]!) i++;
    if (i < n) this.counts[i]!++;
    this.window.add(value, this.now());
  }
}

export interface FamilyBase {
  /** Full (prefixed) name. */
  name: string;
  /** Name as given (unprefixed). */
  base: string;
  help: string;
  /** Sorted label names every series of the family carries. */
  labelNames: readonly string[];
}
export interface CounterFamily extends FamilyBase {
  kind: 'counter';
  series: Map<string, CounterCell>;
}
export interface GaugeFamily extends FamilyBase {
  kind: 'gauge';
  series: Map<string, GaugeCell>;
  callbacks: Map<string, CallbackCell>;
}
export interface HistogramFamily extends FamilyBase {
  kind: 'histogram';
  series: Map<string, HistogramCell>;
  bounds: Float64Array;
}
export type Family = CounterFamily | GaugeFamily | HistogramFamily;

export function checkBuckets(value: unknown, option: string): readonly number[] {
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.some(
      (v, i) => typeof v !== 'number' || !Number.isFinite(v) || (i > 0 && v <= value[i - 1]),
    )
  ) {
    throw new ValidationError(
      `${option} must be a non-empty array of finite, strictly increasing numbers, received ${describeValue(value)}`,
      { option },
    );
  }
  return value as number[];
}

export function checkStringMap(value: unknown, option: string): Record<string, string> {
  const obj = assertObject(value ?? {}, option) ?? {};
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== 'string') {
      throw new ValidationError(`${option}.${k} must be a string, received ${describeValue(v)}`, {
        option,
      });
    }
  }
  return obj as Record<string, string>;
}

export function checkLabels(labels: Labels | undefined, kind: MetricKind): string[] {
  if (labels === undefined) return [];
  assertObject(labels, 'labels');
  const names = Object.keys(labels).sort();
  for (const n of names) {
    if (!LABEL_RE.test(n) || n.startsWith('__') || (kind === 'histogram' && n === 'le')) {
      throw new ValidationError(
        `label name ${describeValue(n)} is not allowed (must match ${LABEL_RE}, not start with __${kind === 'histogram' ? ", not be 'le'" : ''})`,
        { option: 'labels' },
      );
    }
    const v = (labels as Record<string, unknown>)[n];
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new ValidationError(`label ${n} must be a string, received ${describeValue(v)}`, {
        option: 'labels',
      });
    }
  }
  return names;
}

/** The series key (label values in label-name order) and the normalized (string) labels. */
export function seriesKey(fam: Family, labels: Labels | undefined): [string, Labels] {
  if (fam.labelNames.length === 0) return ['', Object.freeze({})];
  const norm: Record<string, string> = {};
  const parts: string[] = [];
  for (const n of fam.labelNames) {
    const v = String((labels as Record<string, unknown>)[n]);
    norm[n] = v;
    parts.push(v);
  }
  return [parts.join('\u0000'), Object.freeze(norm)];
}
