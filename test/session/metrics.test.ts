/** Metrics and events: handles fetched once at construction, counts and timings per operation. */
import { describe, expect, it } from 'vitest';
import type { Labels, MetricsSink } from '../../src/core/metrics.js';
import { DistributedSessionManager } from '../../src/session/index.js';

function recordingSink() {
  const lookups: string[] = [];
  const values = new Map<string, number[]>();
  const record = (name: string, labels?: Labels) => {
    const id = `${name}${labels ? JSON.stringify(labels) : ''}`;
    lookups.push(id);
    const list: number[] = [];
    values.set(id, list);
    return list;
  };
  const sink: MetricsSink = {
    counter: (name, labels) => {
      const list = record(name, labels);
      return { inc: (v = 1) => list.push(v) };
    },
    histogram: (name, labels) => {
      const list = record(name, labels);
      return { observe: (v) => list.push(v) };
    },
    gauge: (name, labels) => {
      const list = record(name, labels);
      return { set: (v) => list.push(v), inc: () => {}, dec: () => {} };
    },
  };
  const get = (id: string) => values.get(id) ?? [];
  return { sink, lookups, get };
}

describe('session metrics and events', () => {
  it('reports per-operation timings, errors and conflicts; looks handles up only once', async () => {
    const { sink, lookups, get } = recordingSink();
    const s = new DistributedSessionManager({ metrics: sink });
    const atConstruction = lookups.length;
    expect(atConstruction).toBeGreaterThan(0);

    await s.saveSession('m1', { messages: [] });
    await s.getSession('m1');
    await s.appendMessage('m1', { content: 'x' });
    await s.extendSession('m1');
    let calls = 0;
    await s.updateSession('m1', async (cur) => {
      if (++calls === 1) await s.saveSession('m1', { messages: [], other: true });
      return cur;
    });
    await s.store.set(`${s.prefix}bad`, 'not json', 60_000);
    await expect(s.getSession('bad')).rejects.toThrow();
    await s.deleteSession('m1');

    expect(lookups.length).toBe(atConstruction);
    for (const op of ['get', 'save', 'append', 'extend', 'update', 'delete']) {
      const t = get(`session_operation_seconds{"operation":"${op}"}`);
      expect(t.length, op).toBeGreaterThan(0);
      for (const v of t) expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(get('session_operation_seconds{"operation":"save"}')).toHaveLength(2);
    expect(get('session_errors_total{"operation":"get"}')).toEqual([1]);
    expect(get('session_conflicts_total')).toEqual([1]);
    expect(get('session_conflict_failures_total')).toEqual([]);
    await s.close();
  });

  it('on() returns a disposer that removes the listener', async () => {
    const s = new DistributedSessionManager();
    const seen: number[] = [];
    const dispose = s.on('conflict', (c) => seen.push(c.attempt));
    const race = (id: string) => {
      let n = 0;
      return s.updateSession(id, async (cur) => {
        if (++n === 1) await s.saveSession(id, { messages: [], n });
        return cur;
      });
    };
    await race('e1');
    dispose();
    await race('e2');
    expect(seen).toEqual([1]);
    await s.close();
  });
});
