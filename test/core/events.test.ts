import { describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/core/events.js';
import { noopMetrics } from '../../src/core/metrics.js';

type Events = { hit: (key: string, n: number) => void; closed: () => void };

describe('Emitter', () => {
  it('delivers typed events and the disposer removes the listener', () => {
    const em = new Emitter<Events>();
    const seen: string[] = [];
    const off = em.on('hit', (k, n) => seen.push(`${k}:${n}`));
    em.emit('hit', 'a', 1);
    off();
    em.emit('hit', 'b', 2);
    const off2 = em.on('hit', (k) => seen.push(k));
    off2.dispose();
    em.emit('hit', 'c', 3);
    expect(seen).toEqual(['a:1']);
    expect(em.has('hit')).toBe(false);
  });

  it('once fires a single time', () => {
    const em = new Emitter<Events>();
    const fn = vi.fn();
    em.once('closed', fn);
    em.emit('closed');
    em.emit('closed');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a throwing listener does not break the emitter or the other listeners', async () => {
    const em = new Emitter<Events>();
    const after = vi.fn();
    const boom = new Error('listener bug');
    em.on('closed', () => {
      throw boom;
    });
    em.on('closed', after);
    const caught = new Promise<unknown>((resolve) => {
      const handler = (e: unknown) => {
        process.off('uncaughtException', handler);
        resolve(e);
      };
      process.on('uncaughtException', handler);
    });
    expect(() => em.emit('closed')).not.toThrow();
    expect(after).toHaveBeenCalledTimes(1);
    expect(await caught).toBe(boom);
  });

  it('the no-op metrics sink accepts every call', () => {
    noopMetrics.counter('x_total', { a: 'b' }).inc();
    noopMetrics.histogram('x_seconds').observe(0.1);
    const g = noopMetrics.gauge('x');
    g.set(1);
    g.inc();
    g.dec(2);
    expect(Object.isFrozen(noopMetrics)).toBe(true);
  });
});
