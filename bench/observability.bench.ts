/**
 * Observability: our handles against raw prom-client on the hot path, the seed-style record()
 * against a raw prom-client call, and the overhead target (a cache L1 hit and a circuit
 * call with `metrics: new Metrics()` within 1.2x of the same call with the no-op default).
 *
 * A single counter increment takes tens of nanoseconds, far below the timer overhead of one
 * measured call, so the micro cases time batches of BATCH operations per call.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics } from '../src/observability/index.js';
import { type BenchRow, type BenchSuite, compare } from './lib.js';

const BATCH = 1000;

const suite: BenchSuite = async () => {
  const rows: BenchRow[] = [];
  const metrics = new Metrics();
  const registry = new Registry();

  // Counter with a label set, fetched once (how every module holds its handles).
  const ours = metrics.counter('cache_hits_total', { tier: 'local' });
  const theirs = new Counter({
    name: 'raw_cache_hits_total',
    help: 'raw',
    labelNames: ['tier'],
    registers: [registry],
  });
  const theirsChild = theirs.labels({ tier: 'local' });
  rows.push(
    await compare({
      group: 'observability',
      case: `counter.inc() with a label, x${BATCH}`,
      ours: () => {
        for (let i = 0; i < BATCH; i++) ours.inc();
      },
      theirsLabel: 'prom-client Counter.labels().inc()',
      theirs: () => {
        for (let i = 0; i < BATCH; i++) theirsChild.inc();
      },
      iterations: 2000,
      maxRatio: 1.2,
    }),
  );

  // Histogram: ours also feeds the windowed percentile sketch behind snapshot().
  const oursH = metrics.histogram('cache_load_seconds', { tier: 'remote' });
  const theirsH = new Histogram({
    name: 'raw_cache_load_seconds',
    help: 'raw',
    labelNames: ['tier'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const theirsHChild = theirsH.labels({ tier: 'remote' });
  const values = Float64Array.from({ length: BATCH }, (_, i) => 0.0005 * 1.01 ** (i % 600));
  rows.push(
    await compare({
      group: 'observability',
      case: `histogram.observe() with a label, x${BATCH}`,
      ours: () => {
        for (let i = 0; i < BATCH; i++) oursH.observe(values[i]!);
      },
      theirsLabel: 'prom-client Histogram.labels().observe()',
      theirs: () => {
        for (let i = 0; i < BATCH; i++) theirsHChild.observe(values[i]!);
      },
      iterations: 1000,
      maxRatio: 1.2,
    }),
  );

  // Without labels: prom-client's fastest path.
  const oursPlain = metrics.histogram('plain_seconds');
  const theirsPlain = new Histogram({
    name: 'raw_plain_seconds',
    help: 'raw',
    registers: [registry],
  });
  rows.push(
    await compare({
      group: 'observability',
      case: `histogram.observe() without labels, x${BATCH}`,
      ours: () => {
        for (let i = 0; i < BATCH; i++) oursPlain.observe(values[i]!);
      },
      theirsLabel: 'prom-client Histogram.observe()',
      theirs: () => {
        for (let i = 0; i < BATCH; i++) theirsPlain.observe(values[i]!);
      },
      iterations: 1000,
      maxRatio: 1.2,
    }),
  );

  // The seed's record(name, value): a name lookup per call, then the handle.
  const rawLatency = new Histogram({
    name: 'raw_latency_seconds',
    help: 'raw',
    registers: [registry],
  });
  const rawRequests = new Counter({
    name: 'raw_requests_total',
    help: 'raw',
    registers: [registry],
  });
  rows.push(
    await compare({
      group: 'observability',
      case: `record('requests', 1) + record('latency', s), x${BATCH}`,
      ours: () => {
        for (let i = 0; i < BATCH; i++) {
          metrics.record('requests', 1);
          metrics.record('latency', values[i]!);
        }
      },
      theirsLabel: 'prom-client Counter.inc() + Histogram.observe()',
      theirs: () => {
        for (let i = 0; i < BATCH; i++) {
          rawRequests.inc(1);
          rawLatency.observe(values[i]!);
        }
      },
      iterations: 1000,
      maxRatio: 1.5,
    }),
  );

  // The overhead target, on the real primitives when they construct in memory.
  try {
    const { DistributedCache } = await import('../src/cache/index.js');
    const on = new DistributedCache({ metrics: new Metrics() });
    const off = new DistributedCache({});
    await on.set('k', 'v');
    await off.set('k', 'v');
    rows.push(
      await compare({
        group: 'observability',
        case: 'cache L1 hit, metrics on',
        ours: () => on.get('k'),
        theirsLabel: 'same call, metrics off (noop)',
        theirs: () => off.get('k'),
        iterations: 20000,
        // Sub-microsecond calls on a shared machine: more alternating rounds, best of each side.
        rounds: 7,
        maxRatio: 1.2,
      }),
    );
    await Promise.all([on.close?.(), off.close?.()]);
  } catch (e) {
    process.stderr.write(`observability bench: cache case skipped: ${(e as Error).message}\n`);
  }
  try {
    const { CircuitBreaker } = await import('../src/resilience/index.js');
    const on = new CircuitBreaker({ metrics: new Metrics() });
    const off = new CircuitBreaker({});
    rows.push(
      await compare({
        group: 'observability',
        case: 'circuit call, metrics on',
        ours: () => on.execute(() => 1),
        theirsLabel: 'same call, metrics off (noop)',
        theirs: () => off.execute(() => 1),
        iterations: 20000,
        // Sub-microsecond calls on a shared machine: more alternating rounds, best of each side.
        rounds: 7,
        maxRatio: 1.2,
      }),
    );
  } catch (e) {
    process.stderr.write(`observability bench: circuit case skipped: ${(e as Error).message}\n`);
  }

  // snapshot() cost with a realistic number of series (not a comparison: a sanity figure).
  for (let i = 0; i < 20; i++) metrics.counter('worker_tasks_total', { queue: `q${i}` }).inc();
  rows.push(
    await compare({
      group: 'observability',
      case: 'snapshot() (~25 series)',
      ours: () => metrics.snapshot(),
      theirsLabel: 'prom-client registry.getMetricsAsJSON()',
      theirs: () => registry.getMetricsAsJSON(),
      iterations: 500,
    }),
  );
  return rows;
};
export default suite;
