/**
 * Side-by-side timing helpers. A case times our code and the raw library or peer it competes with
 * in the same process, on the same server, in one run, and reports both figures and their ratio
 * (ours / theirs: below 1 means we are faster).
 */

/** How to drive one function. */
export interface MeasureOptions {
  /** Total calls to time (after warm-up). @default 2000 */
  iterations?: number;
  /** Calls in flight at once. @default 1 */
  concurrency?: number;
  /** Untimed calls first. @default iterations / 10 */
  warmup?: number;
}

/** What {@link measure} returns. */
export interface Measurement {
  opsPerSec: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  iterations: number;
}

/** Times `fn` over `iterations` calls with `concurrency` callers; per-call latency percentiles. */
export async function measure(
  fn: () => unknown | Promise<unknown>,
  options: MeasureOptions = {},
): Promise<Measurement> {
  const iterations = options.iterations ?? 2000;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const warmup = options.warmup ?? Math.max(1, Math.floor(iterations / 10));
  await drive(fn, warmup, concurrency, undefined);
  const lat = new Float64Array(iterations);
  const t0 = performance.now();
  await drive(fn, iterations, concurrency, lat);
  const elapsed = performance.now() - t0;
  const sorted = Array.from(lat).sort((a, b) => a - b);
  const pct = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return {
    opsPerSec: (iterations / elapsed) * 1000,
    meanMs: elapsed / iterations,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    iterations,
  };
}

async function drive(
  fn: () => unknown | Promise<unknown>,
  n: number,
  concurrency: number,
  lat: Float64Array | undefined,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const s = performance.now();
      await fn();
      if (lat) lat[i] = performance.now() - s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
}

/** One row of the report. */
export interface BenchRow {
  group: string;
  case: string;
  ours: Measurement;
  theirsLabel: string;
  theirs: Measurement;
  /** ours.meanMs / theirs.meanMs as throughput: theirs.opsPerSec / ours.opsPerSec. */
  ratio: number;
  /** The target, in words, e.g. "<= 1.15x". */
  target?: string;
  /** Whether the target was met, when it can be judged from the ratio. */
  met?: boolean;
}

/** A side-by-side comparison. `maxRatio` / `minSpeedup` turn the target into a verdict. */
export interface CompareSpec extends MeasureOptions {
  group: string;
  case: string;
  ours: () => unknown | Promise<unknown>;
  theirsLabel: string;
  theirs: () => unknown | Promise<unknown>;
  /** Target: ours may be at most this many times slower (ratio <= maxRatio). */
  maxRatio?: number;
  /** Target: ours must be at least this many times faster (1 / ratio >= minSpeedup). */
  minSpeedup?: number;
  /** Number of alternating rounds; the best round of each side is kept. @default 3 */
  rounds?: number;
}

/**
 * Runs both sides in alternating rounds (so drift in the machine hits both alike) and keeps each
 * side's best round.
 */
export async function compare(spec: CompareSpec): Promise<BenchRow> {
  const rounds = spec.rounds ?? 3;
  let ours: Measurement | undefined;
  let theirs: Measurement | undefined;
  for (let r = 0; r < rounds; r++) {
    const o = await measure(spec.ours, spec);
    const t = await measure(spec.theirs, spec);
    if (!ours || o.opsPerSec > ours.opsPerSec) ours = o;
    if (!theirs || t.opsPerSec > theirs.opsPerSec) theirs = t;
  }
  const o = ours as Measurement;
  const t = theirs as Measurement;
  const ratio = t.opsPerSec / o.opsPerSec;
  let target: string | undefined;
  let met: boolean | undefined;
  if (spec.maxRatio !== undefined) {
    target = `<= ${spec.maxRatio}x`;
    met = ratio <= spec.maxRatio;
  } else if (spec.minSpeedup !== undefined) {
    target = `>= ${spec.minSpeedup}x faster`;
    met = 1 / ratio >= spec.minSpeedup;
  }
  return {
    group: spec.group,
    case: spec.case,
    ours: o,
    theirsLabel: spec.theirsLabel,
    theirs: t,
    ratio,
    target,
    met,
  };
}

/** Servers a bench case may use (started by the runner unless given in the environment). */
export interface BenchContext {
  redisUrl: string;
  clusterNodes: { host: string; port: number }[];
  pgPrimaryUrl: string;
  pgReplicaUrls: string[];
}

/** A bench file's default export. */
export type BenchSuite = (ctx: BenchContext) => Promise<BenchRow[]>;

/** Formats rows as a fixed-width table. */
export function formatTable(rows: BenchRow[]): string {
  const head = [
    'group',
    'case',
    'ours ops/s',
    'ours p99 ms',
    'vs',
    'their ops/s',
    'their p99 ms',
    'ratio',
    'target',
    'met',
  ];
  const body = rows.map((r) => [
    r.group,
    r.case,
    r.ours.opsPerSec.toFixed(0),
    r.ours.p99Ms.toFixed(3),
    r.theirsLabel,
    r.theirs.opsPerSec.toFixed(0),
    r.theirs.p99Ms.toFixed(3),
    `${r.ratio.toFixed(3)}x`,
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
