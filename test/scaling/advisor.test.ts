import { describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  type Bottleneck,
  DEFAULT_SCALING_THRESHOLDS,
  type ScaleDirection,
  ScalingAdvisor,
  type ScalingAssessment,
  type ScalingSnapshot,
} from '../../src/scaling/index.js';

const S = 1000; // ms per second

/** An advisor on a manual clock. */
function rig(opts: ConstructorParameters<typeof ScalingAdvisor>[0] = {}) {
  let t = 1_700_000_000_000;
  const advisor = new ScalingAdvisor({ ...opts, now: () => t });
  return {
    advisor,
    at: (seconds: number) => {
      t += seconds * S;
    },
    /** Feeds `snap` every `every` seconds for `forSeconds` (inclusive of both ends); returns the last. */
    feed(snap: ScalingSnapshot, forSeconds: number, every = 15): ScalingAssessment {
      let r = advisor.assess(snap);
      for (let s = every; s <= forSeconds; s += every) {
        t += every * S;
        r = advisor.assess(snap);
      }
      return r;
    },
  };
}

function sameSnapshotTwice(snap: ScalingSnapshot): ScalingAssessment {
  // CPU needs to be sustained: the same reading 60 s apart satisfies the default window.
  const r = rig();
  r.advisor.assess(snap);
  r.at(60);
  return r.advisor.assess(snap);
}

describe('ScalingAdvisor defaults', () => {
  it('uses the seed numbers', () => {
    expect(DEFAULT_SCALING_THRESHOLDS.p95LatencyMs).toBe(2000);
    expect(DEFAULT_SCALING_THRESHOLDS.cpu).toBe(0.7);
    expect(DEFAULT_SCALING_THRESHOLDS.memory).toBe(0.8);
    expect(DEFAULT_SCALING_THRESHOLDS.errorRate).toBe(0.01);
    expect(new ScalingAdvisor().thresholds).toEqual(DEFAULT_SCALING_THRESHOLDS);
    expect(Object.isFrozen(DEFAULT_SCALING_THRESHOLDS)).toBe(true);
  });
});

// The seed's "When to Scale" indicators (plus the matrix's network and LLM rows): each fires just
// over its threshold and stays quiet at it.
describe('indicators', () => {
  const cases: {
    name: string;
    over: ScalingSnapshot;
    at: ScalingSnapshot;
    indicator: string;
  }[] = [
    {
      name: 'P95 > 2 s',
      over: { p95LatencyMs: 2001 },
      at: { p95LatencyMs: 2000 },
      indicator: 'p95-latency',
    },
    { name: 'CPU > 70 % sustained', over: { cpu: 0.71 }, at: { cpu: 0.7 }, indicator: 'cpu' },
    { name: 'memory > 80 %', over: { memory: 0.81 }, at: { memory: 0.8 }, indicator: 'memory' },
    {
      name: 'error rate > 1 %',
      over: { errorRate: 0.011 },
      at: { errorRate: 0.01 },
      indicator: 'error-rate',
    },
    {
      name: 'queue depth growing',
      over: { queueDepth: [3, 5, 8, 12, 20] },
      at: { queueDepth: [12, 12, 12, 12, 12] },
      indicator: 'queue-growth',
    },
    {
      name: 'LLM 429 rate > 1 %',
      over: { llmRateLimitRate: 0.02 },
      at: { llmRateLimitRate: 0.01 },
      indicator: 'llm-rate-limit',
    },
    {
      name: 'network > 80 %',
      over: { networkUtilization: 0.81 },
      at: { networkUtilization: 0.8 },
      indicator: 'network',
    },
  ];

  it.each(cases)('$name: fires over the threshold', ({ over, indicator }) => {
    const r = sameSnapshotTwice(over);
    expect(r.scale).toBe('up');
    expect(r.signals.find((s) => s.indicator === indicator)?.firing).toBe(true);
    expect(r.reasons.length).toBeGreaterThan(0);
    expect(r.reasons.join(' ').toLowerCase()).toContain(indicator.split('-')[0]);
  });

  it.each(cases)('$name: holds at the threshold', ({ at, indicator }) => {
    const r = sameSnapshotTwice(at);
    expect(r.scale).toBe('hold');
    expect(r.bottleneck).toBeNull();
    expect(r.signals.find((s) => s.indicator === indicator)?.firing).toBe(false);
  });

  it('every threshold is overridable', () => {
    const advisor = new ScalingAdvisor({
      thresholds: { p95LatencyMs: 500, memory: 0.5, errorRate: 0.2 },
      now: () => 0,
    });
    expect(advisor.assess({ p95LatencyMs: 600 }).scale).toBe('up');
    const b = new ScalingAdvisor({
      thresholds: { p95LatencyMs: 5000, memory: 0.95 },
      now: () => 0,
    });
    expect(b.assess({ p95LatencyMs: 3000, memory: 0.9 }).scale).toBe('hold');
  });

  it('a decreasing or too short queue is not growing', () => {
    const a = new ScalingAdvisor({ now: () => 0 });
    expect(a.assess({ queueDepth: [50, 40, 30, 20] }).scale).toBe('hold');
    expect(a.assess({ queueDepth: [1, 9] }).scale).toBe('hold'); // fewer than queueMinSamples
    // One noisy uptick at the end of a flat queue is not a trend.
    expect(a.assess({ queueDepth: [10, 10, 9, 10, 10, 11] }).scale).toBe('hold');
  });

  it('tracks a growing queue across calls when given one depth at a time', () => {
    const r = rig();
    expect(r.advisor.assess({ queueDepth: 5 }).scale).toBe('hold');
    r.at(15);
    expect(r.advisor.assess({ queueDepth: 9 }).scale).toBe('hold'); // two samples: too few
    r.at(15);
    const third = r.advisor.assess({ queueDepth: 14 });
    expect(third.scale).toBe('up');
    expect(third.reasons.join()).toMatch(/queue depth growing: 5 -> 14/);
  });
});

describe('CPU must be sustained', () => {
  it('one sample over 70 % is not enough; 60 s of them is', () => {
    const r = rig();
    const first = r.advisor.assess({ cpu: 0.95 });
    expect(first.scale).toBe('hold');
    expect(first.reasons.join()).toMatch(/not yet sustained/);
    r.at(30);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('hold');
    r.at(30);
    const r60 = r.advisor.assess({ cpu: 0.92 });
    expect(r60.scale).toBe('up');
    expect(r60.bottleneck).toBe('cpu');
    expect(r60.reasons.join()).toMatch(/sustained for 60 s/);
  });

  it('a dip under the threshold restarts the window', () => {
    const r = rig();
    r.advisor.assess({ cpu: 0.9 });
    r.at(45);
    r.advisor.assess({ cpu: 0.5 });
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('hold'); // 60 s since the first, 0 s since the dip
    r.at(45);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('hold');
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('up');
  });

  it('works at any sampling rate (10 ms samples for 60 s)', () => {
    const r = rig();
    let last = r.advisor.assess({ cpu: 0.9 });
    for (let i = 0; i < 6000; i++) {
      r.at(0.01);
      last = r.advisor.assess({ cpu: 0.9 });
      if (i < 5990) expect(last.scale).toBe('hold');
    }
    expect(last.scale).toBe('up');
  });

  it('cpuSustainSeconds is configurable (0 = one sample)', () => {
    const a = new ScalingAdvisor({ cpuSustainSeconds: 0, now: () => 0 });
    expect(a.assess({ cpu: 0.8 }).scale).toBe('up');
    const r = rig({ cpuSustainSeconds: 300 });
    expect(r.feed({ cpu: 0.9 }, 285).scale).toBe('hold');
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('up');
  });

  it('snapshots may carry their own timestamps', () => {
    const a = new ScalingAdvisor({ now: () => Number.NaN });
    expect(a.assess({ cpu: 0.9, timestampMs: 1000 }).scale).toBe('hold');
    expect(a.assess({ cpu: 0.9, timestampMs: 61_000 }).scale).toBe('up');
  });
});

// The seed's Scaling Decision Matrix, one row per line:
//   CPU Bound       vertical ✓ Initially   horizontal ✓ Long-term
//   Memory Bound    vertical ✓ Good        horizontal ✓ Better
//   I/O Bound       vertical ✗ Limited     horizontal ✓ Good
//   Network Bound   vertical ✗ Limited     horizontal ✓ Best
//   LLM Rate Limits vertical ✗ No help     horizontal ✓ Best
describe('decision matrix', () => {
  const rows: {
    row: string;
    snap: ScalingSnapshot;
    bottleneck: Bottleneck;
    direction: ScaleDirection;
  }[] = [
    {
      row: 'CPU bound, initially (one replica)',
      snap: { cpu: 0.9, replicas: 1 },
      bottleneck: 'cpu',
      direction: 'vertical',
    },
    {
      row: 'CPU bound, replicas unknown (initially)',
      snap: { cpu: 0.9 },
      bottleneck: 'cpu',
      direction: 'vertical',
    },
    {
      row: 'CPU bound, long-term (several replicas)',
      snap: { cpu: 0.9, replicas: 6 },
      bottleneck: 'cpu',
      direction: 'horizontal',
    },
    {
      row: 'CPU bound, no bigger size available',
      snap: { cpu: 0.9, replicas: 1, canScaleVertically: false },
      bottleneck: 'cpu',
      direction: 'horizontal',
    },
    {
      row: 'CPU bound, horizontal exhausted',
      snap: { cpu: 0.9, replicas: 10, maxReplicas: 10 },
      bottleneck: 'cpu',
      direction: 'vertical',
    },
    {
      row: 'memory bound: horizontal is better',
      snap: { memory: 0.9, replicas: 1 },
      bottleneck: 'memory',
      direction: 'horizontal',
    },
    {
      row: 'memory bound, horizontal exhausted: vertical is good',
      snap: { memory: 0.9, replicas: 10, maxReplicas: 10 },
      bottleneck: 'memory',
      direction: 'vertical',
    },
    {
      row: 'I/O bound (io wait)',
      snap: { p95LatencyMs: 3500, cpu: 0.2, ioWait: 0.45, replicas: 1 },
      bottleneck: 'io',
      direction: 'horizontal',
    },
    {
      row: 'I/O bound (slow, CPU idle)',
      snap: { p95LatencyMs: 3500, cpu: 0.15, replicas: 1 },
      bottleneck: 'io',
      direction: 'horizontal',
    },
    {
      row: 'I/O bound (queue backing up, CPU idle)',
      snap: { queueDepth: [10, 20, 40, 80], cpu: 0.1 },
      bottleneck: 'io',
      direction: 'horizontal',
    },
    {
      row: 'network bound',
      snap: { networkUtilization: 0.93, replicas: 1 },
      bottleneck: 'network',
      direction: 'horizontal',
    },
    {
      row: 'LLM rate limits: vertical is no help',
      snap: { llmRateLimitRate: 0.08, p95LatencyMs: 4000, cpu: 0.1, replicas: 1 },
      bottleneck: 'llm-rate-limit',
      direction: 'horizontal',
    },
  ];

  it.each(rows)('$row -> $bottleneck, $direction', ({ snap, bottleneck, direction }) => {
    const r = sameSnapshotTwice(snap);
    expect(r.scale).toBe('up');
    expect(r.bottleneck).toBe(bottleneck);
    expect(r.bottlenecks[0]).toBe(bottleneck);
    expect(r.direction).toBe(direction);
  });

  it('reports every bottleneck, most decisive first', () => {
    const r = sameSnapshotTwice({ cpu: 0.9, memory: 0.9, llmRateLimitRate: 0.05 });
    expect(r.bottlenecks).toEqual(['llm-rate-limit', 'memory', 'cpu']);
    expect(r.direction).toBe('horizontal');
  });

  it('errors alone scale up horizontally without naming a bottleneck', () => {
    const r = sameSnapshotTwice({ errorRate: 0.05 });
    expect(r).toMatchObject({ scale: 'up', direction: 'horizontal', bottleneck: null });
  });
});

describe('scale down with hysteresis', () => {
  it('waits 300 s of low load, then one step per window', () => {
    const r = rig();
    const low = { cpu: 0.1, memory: 0.2, p95LatencyMs: 300, errorRate: 0 };
    expect(r.feed(low, 285).scale).toBe('hold');
    r.at(15);
    const down = r.advisor.assess(low);
    expect(down.scale).toBe('down');
    expect(down.direction).toBe('horizontal');
    expect(down.reasons.join()).toMatch(/300 s/);
    // The next step down needs another full window.
    expect(r.feed(low, 285).scale).toBe('hold');
    r.at(15);
    expect(r.advisor.assess(low).scale).toBe('down');
  });

  it('a single busy sample restarts the window', () => {
    const r = rig();
    const low = { cpu: 0.1 };
    r.feed(low, 240);
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.5 }).scale).toBe('hold'); // inside the hysteresis band
    r.at(15);
    expect(r.feed(low, 285).scale).toBe('hold');
    r.at(15);
    expect(r.advisor.assess(low).scale).toBe('down');
  });

  it('load between the low mark and the threshold holds forever', () => {
    const r = rig();
    expect(r.feed({ cpu: 0.5, memory: 0.5 }, 3600).scale).toBe('hold');
  });

  it('a snapshot without load metrics never scales down', () => {
    const r = rig();
    expect(r.feed({ errorRate: 0 }, 900).scale).toBe('hold');
  });

  it('a single replica scales down vertically', () => {
    const r = rig({ scaleDownStabilizationSeconds: 60 });
    r.feed({ cpu: 0.05, replicas: 1 }, 45);
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.05, replicas: 1 })).toMatchObject({
      scale: 'down',
      direction: 'vertical',
    });
  });
});

describe('no flapping', () => {
  // Deterministic noise so a failure is reproducible.
  function lcg(seed: number) {
    let x = seed >>> 0;
    return () => {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      return x / 2 ** 32;
    };
  }

  function run(series: (i: number, rnd: () => number) => ScalingSnapshot, samples: number) {
    const r = rig();
    const rnd = lcg(42);
    const out: string[] = [];
    for (let i = 0; i < samples; i++) {
      out.push(r.advisor.assess(series(i, rnd)).scale);
      r.at(15);
    }
    return out;
  }

  const transitions = (xs: string[]) => {
    const moves = xs.filter((x) => x !== 'hold');
    let flips = 0;
    for (let i = 1; i < moves.length; i++) if (moves[i] !== moves[i - 1]) flips++;
    return flips;
  };

  it('CPU alternating around 70 % every sample: no up, no down', () => {
    // A naive one-sample rule would say up, down, up, down...
    const out = run((i) => ({ cpu: i % 2 ? 0.9 : 0.2, memory: 0.3 }), 240);
    expect(out.every((x) => x === 'hold')).toBe(true);
  });

  it('CPU noisy around 70 % for an hour: never down, never oscillates', () => {
    const out = run((_, rnd) => ({ cpu: 0.7 + (rnd() - 0.5) * 0.2, memory: 0.4 }), 240);
    expect(out).not.toContain('down');
    expect(transitions(out)).toBe(0);
  });

  it('every metric noisy around its threshold: no up/down oscillation', () => {
    const out = run(
      (_, rnd) => ({
        cpu: 0.7 + (rnd() - 0.5) * 0.2,
        memory: 0.8 + (rnd() - 0.5) * 0.1,
        p95LatencyMs: 2000 + (rnd() - 0.5) * 800,
        errorRate: 0.01 + (rnd() - 0.5) * 0.01,
      }),
      240,
    );
    expect(out).toContain('up'); // it does react to the spikes...
    expect(out).not.toContain('down'); // ...but never swings back down inside the band
    expect(transitions(out)).toBe(0);
  });

  it('CPU noisy around the low-water mark: never up', () => {
    const out = run((_, rnd) => ({ cpu: 0.35 + (rnd() - 0.5) * 0.2 }), 240);
    expect(out).not.toContain('up');
  });

  it('a real load swing gives one up, then one down only after the stabilisation window', () => {
    const out = run((i) => ({ cpu: i < 20 ? 0.9 : 0.1 }), 60);
    const firstUp = out.indexOf('up');
    const firstDown = out.indexOf('down');
    expect(firstUp).toBe(4); // 60 s of samples every 15 s
    expect(out.slice(firstUp, 20).every((x) => x === 'up')).toBe(true);
    expect(firstDown).toBe(20 + 20); // 300 s after load fell
  });
});

describe('events and reset', () => {
  it('emits every assessment and can be disposed', () => {
    const a = new ScalingAdvisor({ now: () => 0 });
    const seen: string[] = [];
    const off = a.on('assessed', (x) => seen.push(x.scale));
    a.assess({ p95LatencyMs: 3000 });
    off();
    a.assess({ p95LatencyMs: 3000 });
    expect(seen).toEqual(['up']);
  });

  it('reset forgets the CPU streak', () => {
    const r = rig();
    r.advisor.assess({ cpu: 0.9 });
    r.at(45);
    r.advisor.reset();
    r.advisor.assess({ cpu: 0.9 });
    r.at(15);
    expect(r.advisor.assess({ cpu: 0.9 }).scale).toBe('hold');
  });

  it('counts advice in the metrics sink', () => {
    const counts: Record<string, number> = {};
    const sink = {
      counter: (name: string, labels?: Record<string, string>) => ({
        inc: (v = 1) => {
          const k = `${name}{${labels?.scale}}`;
          counts[k] = (counts[k] ?? 0) + v;
        },
      }),
      histogram: () => ({ observe() {} }),
      gauge: () => ({ set() {}, inc() {}, dec() {} }),
    };
    const a = new ScalingAdvisor({ now: () => 0, metrics: sink });
    a.assess({ p95LatencyMs: 3000 });
    a.assess({ p95LatencyMs: 100 });
    expect(counts).toEqual({ 'scaling_advice_total{up}': 1, 'scaling_advice_total{hold}': 1 });
  });
});

describe('bad input', () => {
  const bad: [string, unknown, string][] = [
    ['cpu as a percentage', { cpu: 75 }, 'snapshot.cpu'],
    ['negative memory', { memory: -0.1 }, 'snapshot.memory'],
    ['NaN error rate', { errorRate: Number.NaN }, 'snapshot.errorRate'],
    ['negative latency', { p95LatencyMs: -1 }, 'snapshot.p95LatencyMs'],
    ['Infinity latency', { p95LatencyMs: Number.POSITIVE_INFINITY }, 'snapshot.p95LatencyMs'],
    ['string queue depth', { queueDepth: '5' }, 'snapshot.queueDepth'],
    ['NaN in queue history', { queueDepth: [1, Number.NaN] }, 'snapshot.queueDepth[1]'],
    ['fractional replicas', { replicas: 1.5 }, 'snapshot.replicas'],
    ['llm rate over 1', { llmRateLimitRate: 2 }, 'snapshot.llmRateLimitRate'],
    ['not an object', null, 'snapshot'],
  ];
  it.each(bad)('%s -> ValidationError', (_, snap, option) => {
    const a = new ScalingAdvisor({ now: () => 0 });
    try {
      a.assess(snap as ScalingSnapshot);
      expect.unreachable();
    } catch (e) {
      expect(isValidationError(e)).toBe(true);
      expect((e as { option?: string }).option).toBe(option);
    }
  });

  it('rejects a snapshot older than the previous one', () => {
    const a = new ScalingAdvisor();
    a.assess({ cpu: 0.1, timestampMs: 5000 });
    expect(() => a.assess({ cpu: 0.1, timestampMs: 4000 })).toThrow(/older than the previous/);
  });

  it.each([
    [{ thresholds: { cpu: 70 } }, 'thresholds.cpu'],
    [{ thresholds: { p95LatencyMs: 0 } }, 'thresholds.p95LatencyMs'],
    [{ thresholds: { cpus: 0.5 } }, 'thresholds.cpus'],
    [{ cpuSustainSeconds: -1 }, 'cpuSustainSeconds'],
    [{ scaleDownRatio: 0 }, 'scaleDownRatio'],
    [{ now: 5 }, 'now'],
  ])('constructor %j -> ValidationError naming %s', (opts, option) => {
    try {
      new ScalingAdvisor(opts as never);
      expect.unreachable();
    } catch (e) {
      expect(isValidationError(e)).toBe(true);
      expect((e as { option?: string }).option).toBe(option);
    }
  });
});
