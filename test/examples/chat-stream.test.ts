/**
 * POST /api/chat/stream: server-sent events through the AI SDK (streamText + azscaleMiddleware)
 * against the service's model served over OpenAI-compatible HTTP, on the same pipeline as
 * /api/chat (cache, budget, limiter, breaker).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentService, ROUTES, createAgentService } from '../../examples/agent-service/app.js';
import { loadConfig } from '../../examples/agent-service/config.js';
import { LocalModel } from '../../examples/agent-service/llm.js';

async function sse(url: string, body: unknown) {
  const res = await fetch(url + ROUTES.chatStream, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const events = text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      return { event, data: data ? JSON.parse(data) : undefined };
    });
  return { status: res.status, type: res.headers.get('content-type'), events, text };
}

describe('agent service: POST /api/chat/stream', () => {
  let service: AgentService;
  let url: string;
  let model: LocalModel;
  beforeAll(async () => {
    model = new LocalModel({ latencyMs: 5 });
    service = await createAgentService(
      loadConfig({ LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1', BREAKER_FAILURES: '2' }),
      { model },
    );
    url = await service.listen();
  });
  afterAll(async () => {
    await service?.close();
  });

  it('streams deltas then done; an identical request is replayed from the cache', async () => {
    const first = await sse(url, { message: 'stream to me' });
    expect(first.status).toBe(200);
    expect(first.type).toContain('text/event-stream');
    const deltas = first.events.filter((e) => e.event === 'delta');
    expect(deltas.length).toBeGreaterThan(2);
    const text = deltas.map((d) => d.data.text).join('');
    expect(text).toContain('stream to me');
    const done = first.events.at(-1);
    expect(done?.event).toBe('done');
    expect(done?.data).toMatchObject({ cached: false, messages: 2 });
    const calls = model.calls;
    const again = await sse(url, { message: 'stream to me' });
    const text2 = again.events
      .filter((e) => e.event === 'delta')
      .map((d) => d.data.text)
      .join('');
    expect(text2).toBe(text);
    expect(again.events.at(-1)?.data).toMatchObject({ cached: true });
    expect(model.calls).toBe(calls);
    // The history holds the streamed answer.
    const sid = done?.data.session_id as string;
    const s = (await fetch(`${url}/api/session/${sid}`).then((r) => r.json())) as {
      messages: unknown[];
    };
    expect(s.messages.at(-1)).toMatchObject({ role: 'assistant', content: text });
  });

  it('a provider outage before the first text is a JSON error; the breaker then answers 503', async () => {
    model.outage = true;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await sse(url, { message: `outage ${i}` });
        statuses.push(r.status);
        expect(r.type).toContain('application/json');
      }
      expect(statuses[0]).toBe(502);
      expect(statuses.at(-1)).toBe(503);
    } finally {
      model.outage = false;
    }
  });

  it('rejects bad input with 400 before streaming', async () => {
    const r = await sse(url, { message: '' });
    expect(r.status).toBe(400);
  });
});
