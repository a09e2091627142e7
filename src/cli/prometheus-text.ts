/**
 * Reads the Prometheus text exposition format (version 0.0.4) into samples, and computes the
 * figures `azscale advise` needs from one or two scrapes: counter deltas and histogram quantiles
 * (the same linear interpolation as PromQL's `histogram_quantile`).
 */

/** One sample line. */
export interface PromSample {
  /** Metric name, including `_bucket`/`_sum`/`_count` suffixes. */
  name: string;
  /** Label values by name. */
  labels: Record<string, string>;
  /** The value (may be NaN or ±Infinity). */
  value: number;
}

// Prometheus parses values with Go's ParseFloat: NaN and Inf in any letter case (prom-client,
// for one, writes `Nan`).
function parseValue(text: string): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf(inity)?$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(text)) return Number.NaN;
  const v = Number(text);
  if (text.trim() === '' || Number.isNaN(v)) {
    throw new SyntaxError(`not a sample value: ${JSON.stringify(text)}`);
  }
  return v;
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++;
    if (i >= text.length) break;
    const eq = text.indexOf('=', i);
    if (eq < 0 || text[eq + 1] !== '"') throw new SyntaxError(`line ${line}: bad label set`);
    const name = text.slice(i, eq).trim();
    let j = eq + 2;
    let value = '';
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j++;
        const c = text[j];
        value += c === 'n' ? '\n' : (c ?? '');
      } else value += text[j];
    }
    if (j >= text.length) throw new SyntaxError(`line ${line}: unterminated label value`);
    labels[name] = value;
    i = j + 1;
  }
  return labels;
}

/**
 * Parses exposition text. Comment (`#`) and blank lines are skipped; a malformed sample line
 * throws a SyntaxError naming the line.
 */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!.trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const brace = raw.indexOf('{');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    const space = raw.search(/\s/);
    if (brace >= 0 && (space < 0 || brace < space)) {
      const close = raw.lastIndexOf('}');
      if (close < brace) throw new SyntaxError(`line ${n + 1}: unterminated label set`);
      name = raw.slice(0, brace);
      labels = parseLabels(raw.slice(brace + 1, close), n + 1);
      rest = raw.slice(close + 1).trim();
    } else {
      if (space < 0) throw new SyntaxError(`line ${n + 1}: sample without a value`);
      name = raw.slice(0, space);
      rest = raw.slice(space).trim();
    }
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) {
      throw new SyntaxError(`line ${n + 1}: bad metric name ${JSON.stringify(name)}`);
    }
    const [valueText] = rest.split(/\s+/);
    out.push({ name, labels, value: parseValue(valueText ?? '') });
  }
  return out;
}

/** Sum of every series named `name` whose labels pass `filter`. */
export function sumOf(
  samples: readonly PromSample[],
  name: string,
  filter: (labels: Record<string, string>) => boolean = () => true,
): number | undefined {
  let total: number | undefined;
  for (const s of samples) {
    if (s.name === name && filter(s.labels)) total = (total ?? 0) + s.value;
  }
  return total;
}

/** Cumulative bucket counts of a histogram, merged over its label sets, by upper bound. */
export function histogramBuckets(
  samples: readonly PromSample[],
  name: string,
): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  return buckets;
}

/**
 * The `q` quantile (0..1) of a histogram given cumulative buckets (optionally the difference of
 * two scrapes), interpolated linearly inside the bucket as PromQL does. Undefined when empty.
 */
export function histogramQuantile(
  q: number,
  buckets: Map<number, number>,
  before?: Map<number, number>,
): number | undefined {
  const rows = [...buckets.entries()]
    .map(([le, c]) => [le, c - (before?.get(le) ?? 0)] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = rows.at(-1)?.[1] ?? 0;
  if (rows.length === 0 || total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of rows) {
    if (count >= rank) {
      // The +Inf bucket has no upper bound: answer its lower bound, as PromQL does.
      if (!Number.isFinite(le)) return prevLe;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? le : prevLe + (le - prevLe) * ((rank - prevCount) / inBucket);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
