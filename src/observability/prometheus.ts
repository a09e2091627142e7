/**
 * The Prometheus side of the metrics module: the collector objects prom-client's Registry
 * formats, and the HTTP handlers that serve the text exposition.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TimeoutError } from '../core/errors.js';
import { type Family, badValue } from './metric-families.js';

/** One label/value line as prom-client's registry formats it. */
interface PromValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** What collecting needs from its owner: the gauge callback bound and where errors go. */
export interface CollectContext {
  /** Longest wait for an async gauge callback, in milliseconds. */
  readonly gaugeTimeoutMs: number;
  /** Reports a gauge callback that threw, rejected, timed out or gave a non-number. */
  collectError(metric: string, error: unknown): void;
}

/** The object prom-client's Registry formats: the shape of its own metric classes. */
export function collectorOf(fam: Family, ctx: CollectContext) {
  const get = async () => ({
    name: fam.name,
    help: fam.help,
    type: fam.kind,
    aggregator: 'sum' as const,
    values: await promValues(fam, ctx),
  });
  return {
    name: fam.name,
    help: fam.help,
    type: fam.kind,
    aggregator: 'sum' as const,
    labelNames: fam.labelNames,
    get,
    reset: () => {
      // prom-client's resetMetrics(): zero every value, keep the handles modules hold.
      if (fam.kind === 'histogram') {
        for (const c of fam.series.values()) {
          c.counts.fill(0);
          c.sum = 0;
          c.count = 0;
        }
      } else for (const c of fam.series.values()) c.value = 0;
    },
  };
}

async function promValues(fam: Family, ctx: CollectContext): Promise<PromValue[]> {
  if (fam.kind === 'counter') {
    return [...fam.series.values()].map((c) => ({ value: c.value, labels: { ...c.labels } }));
  }
  if (fam.kind === 'gauge') {
    const out: PromValue[] = [...fam.series.values()].map((c) => ({
      value: c.value,
      labels: { ...c.labels },
    }));
    const cbs = [...fam.callbacks.values()];
    const read = await Promise.all(
      cbs.map(async (cb) => {
        try {
          const v = await withGaugeTimeout(fam.name, cb.fn(), ctx.gaugeTimeoutMs);
          if (typeof v !== 'number' || Number.isNaN(v)) {
            ctx.collectError(fam.name, badValue(fam.name, 'a number', v));
            return undefined;
          }
          cb.last = v;
          return v;
        } catch (e) {
          ctx.collectError(fam.name, e);
          return undefined;
        }
      }),
    );
    cbs.forEach((cb, i) => {
      const v = read[i];
      if (v !== undefined) out.push({ value: v, labels: { ...cb.labels } });
    });
    return out;
  }
  const out: PromValue[] = [];
  const bucketName = `${fam.name}_bucket`;
  for (const c of fam.series.values()) {
    let acc = 0;
    for (let i = 0; i < fam.bounds.length; i++) {
      acc += c.counts[i]!;
      out.push({
        value: acc,
        labels: { ...c.labels, le: fam.bounds[i]! },
        metricName: bucketName,
      });
    }
    out.push({ value: c.count, labels: { ...c.labels, le: '+Inf' }, metricName: bucketName });
    out.push({ value: c.sum, labels: { ...c.labels }, metricName: `${fam.name}_sum` });
    out.push({ value: c.count, labels: { ...c.labels }, metricName: `${fam.name}_count` });
  }
  return out;
}

/** Bounds an async gauge callback so one stuck backend cannot hang the whole scrape. */
function withGaugeTimeout(
  metric: string,
  value: number | Promise<number>,
  timeoutMs: number,
): Promise<number> {
  if (typeof value === 'number') return Promise.resolve(value);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TimeoutError(`gauge callback ${metric} took over ${timeoutMs / 1000}s`, {
            context: { metric },
          }),
        ),
      timeoutMs,
    );
  });
  return Promise.race([Promise.resolve(value), timeout]).finally(() => clearTimeout(timer));
}

/** What the HTTP handlers serve: the exposition text and its content type. */
export interface Exposition {
  prometheus(): Promise<string>;
  readonly contentType: string;
}

/** A `node:http` (and Express) handler answering with the exposition, 500 when collection fails. */
export function nodeHandler(
  source: Exposition,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    source.prometheus().then(
      (text) => {
        res.statusCode = 200;
        res.setHeader('Content-Type', source.contentType);
        res.end(text);
      },
      (e: unknown) => {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`metrics collection failed: ${e instanceof Error ? e.message : String(e)}\n`);
      },
    );
  };
}

/** A Fastify route handler answering with the exposition. */
export function fastifyRouteHandler(
  source: Exposition,
): (
  request: unknown,
  reply: { type(contentType: string): unknown; send(payload: string): unknown },
) => Promise<string> {
  return async (_request, reply) => {
    const text = await source.prometheus();
    reply.type(source.contentType);
    return text;
  };
}
