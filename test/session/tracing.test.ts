/** Session operations are azscale.session.<op> spans under the caller's span (ids are not recorded). */
import { describe, expect, it } from 'vitest';
import { disableTracing, setupTracing } from '../../src/observability/index.js';
import { DistributedSessionManager, newSessionId } from '../../src/session/index.js';
import { parentSpanId, useInMemoryTracing } from '../harness/tracing.js';

const tracing = useInMemoryTracing();

describe('session spans', () => {
  it('get, append and update are spans under the request span; the session id is not an attribute', async () => {
    const sessions = new DistributedSessionManager();
    const id = newSessionId();
    await sessions.appendMessage(id, { role: 'user', content: 'untraced' });
    expect(tracing.exporter.getFinishedSpans()).toHaveLength(0);
    setupTracing({ serviceName: 'svc', tracerProvider: tracing.provider });
    try {
      await tracing.provider.getTracer('t').startActiveSpan('request', async (root) => {
        await sessions.getSession(id);
        await sessions.appendMessage(id, { role: 'user', content: 'hi' });
        await sessions.updateSession(id, (s) => ({ ...s, seen: true }));
        root.end();
      });
      const spans = tracing.exporter.getFinishedSpans();
      const root = spans.find((s) => s.name === 'request');
      const names = spans.filter((s) => s.name.startsWith('azscale.session.')).map((s) => s.name);
      expect(names).toEqual([
        'azscale.session.get',
        'azscale.session.append',
        'azscale.session.update',
      ]);
      for (const s of spans.filter((x) => x.name.startsWith('azscale.session.'))) {
        expect(parentSpanId(s)).toBe(root?.spanContext().spanId);
        expect(JSON.stringify(s.attributes)).not.toContain(id);
      }
      expect((await sessions.getSession(id)).messages).toHaveLength(2);
    } finally {
      disableTracing();
      await sessions.close();
    }
  });
});
