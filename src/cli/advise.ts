/**
 * `azscale advise`: scrape a running service's /metrics a few times and ask the ScalingAdvisor.
 */
import { ValidationError } from '../core/errors.js';
import type { ScalingAssessment, ScalingSnapshot } from '../scaling/index.js';
import { ScalingAdvisor } from '../scaling/index.js';
import {
  type PromSample,
  histogramBuckets,
  histogramQuantile,
  parsePrometheusText,
  sumOf,
} from './prometheus-text.js';

/** Metric names `advise` reads; the defaults are what the example service exports. */
export interface AdviseMetricNames {
  /** Counter of HTTP requests. @default 'azscale_http_requests_total' */
  requests: string;
  /** Counter of failed (5xx) requests. @default 'azscale_http_errors_total' */
  errors: string;
  /** Histogram of request durations in seconds. @default 'azscale_http_request_duration_seconds' */
  latency: string;
  /** Gauge of queued tasks. @default 'azscale_worker_queue_depth' */
  queueDepth: string;
}

/** The default metric names. */
export const DEFAULT_ADVISE_METRICS: Readonly<AdviseMetricNames> = Object.freeze({
  requests: 'azscale_http_requests_total',
  errors: 'azscale_http_errors_total',
  latency: 'azscale_http_request_duration_seconds',
  queueDepth: 'azscale_worker_queue_depth',
});

/** One scrape. */
export interface Scrape {
  /** When it was taken, epoch milliseconds. */
  t: number;
  samples: PromSample[];
}

/** Options of {@link snapshotFromScrapes}. */
export interface SnapshotOptions {
  names?: Partial<AdviseMetricNames>;
  /** CPU cores the process may use (the container limit). @default 1 */
  cpus?: number;
  /** Memory limit in bytes; without it, memory is not judged. */
  memoryLimitBytes?: number;
}

/** Builds the advisor's snapshot from scrapes (oldest first): deltas when there are two or more. */
export function snapshotFromScrapes(
  scrapes: readonly Scrape[],
  options: SnapshotOptions = {},
): ScalingSnapshot {
  const last = scrapes.at(-1);
  if (!last) throw new ValidationError('need at least one scrape', { option: 'scrapes' });
  const first = scrapes.length > 1 ? scrapes[0] : undefined;
  const n = { ...DEFAULT_ADVISE_METRICS, ...options.names };
  const snap: ScalingSnapshot = { timestampMs: last.t };

  const delta = (name: string, filter?: (l: Record<string, string>) => boolean) => {
    const now = sumOf(last.samples, name, filter);
    if (now === undefined) return undefined;
    return now - (first ? (sumOf(first.samples, name, filter) ?? 0) : 0);
  };

  const p95 = histogramQuantile(
    0.95,
    histogramBuckets(last.samples, n.latency),
    first ? histogramBuckets(first.samples, n.latency) : undefined,
  );
  if (p95 !== undefined) snap.p95LatencyMs = p95 * 1000;

  const requests = delta(n.requests);
  const errors = delta(n.errors);
  if (requests !== undefined && requests > 0) {
    snap.errorRate = Math.min(1, Math.max(0, (errors ?? 0) / requests));
  }

  if (first) {
    const cpuSeconds = delta('process_cpu_seconds_total');
    const dt = (last.t - first.t) / 1000;
    if (cpuSeconds !== undefined && dt > 0) {
      snap.cpu = Math.min(1, Math.max(0, cpuSeconds / dt / (options.cpus ?? 1)));
    }
  }
  const rss = sumOf(last.samples, 'process_resident_memory_bytes');
  if (rss !== undefined && options.memoryLimitBytes) {
    snap.memory = Math.min(1, rss / options.memoryLimitBytes);
  }

  const depths = scrapes
    .map((s) => sumOf(s.samples, n.queueDepth))
    .filter((v): v is number => v !== undefined);
  if (depths.length > 0) snap.queueDepthHistory = depths;
  return snap;
}

/** "8Gi" / "512Mi" / "2G" / a byte count -> bytes. */
export function parseMemoryQuantity(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(text.trim());
  if (!m) {
    throw new ValidationError(
      `memory limit must look like 8Gi, 512Mi or a byte count, received "${text}"`,
      {
        option: 'memory-limit',
      },
    );
  }
  const mult: Record<string, number> = {
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(m[1]) * (m[2] ? (mult[m[2]] ?? 1) : 1);
}

/** Fetches one scrape of `url` with a timeout (seconds). */
export async function scrape(url: string, timeoutSeconds = 5): Promise<Scrape> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  } catch (e) {
    // fetch's own message is only "fetch failed"; the reason is in its cause.
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new Error(`cannot read ${url}: ${why}`, { cause: e });
  }
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status} ${res.statusText}`);
  const text = await res.text();
  return { t: Date.now(), samples: parsePrometheusText(text) };
}

/** Options of {@link advise}. */
export interface AdviseOptions extends SnapshotOptions {
  /** The /metrics URL. */
  url: string;
  /** Scrapes to take. @default 3 */
  samples?: number;
  /** Seconds between scrapes. @default 1 */
  interval?: number;
  /**
   * Called after each scrape with how many are done and how many are asked for, and the seconds
   * until the next one (0 after the last), so a caller can show progress.
   */
  onProgress?: (done: number, total: number, nextInSeconds: number) => void;
}

/** Scrapes and assesses. */
export async function advise(
  options: AdviseOptions,
): Promise<{ snapshot: ScalingSnapshot; assessment: ScalingAssessment }> {
  const count = options.samples ?? 3;
  const interval = options.interval ?? 1;
  const scrapes: Scrape[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, interval * 1000));
    scrapes.push(await scrape(options.url));
    options.onProgress?.(i + 1, count, i + 1 < count ? interval : 0);
  }
  const snapshot = snapshotFromScrapes(scrapes, options);
  // One-shot advice: CPU judged on what we saw, not on a minute of history we do not have.
  const advisor = new ScalingAdvisor({ cpuSustainSeconds: 0 });
  return { snapshot, assessment: advisor.assess(snapshot) };
}
