/**
 * The agent service's GET /api/task/:id/events over real HTTP: the async agent (a flow of two
 * sub-tasks and the agent task) streams its status, progress and result as server-sent events;
 * on Redis the stream is served by an instance that runs no worker (events cross instances).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentService, ROUTES, createAgentService } from '../../examples/agent-service/app.js';
import { loadConfig } from '../../examples/agent-service/config.js';
import { LocalModel } from '../../examples/agent-service/llm.js';
import { type ServerHandle, startRedisServer } from '../harness/env.js';
import { http } from './helpers.js';

const quiet = { LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1', LLM_LATENCY_MS: '5' };
const opened: AgentService[] = [];
const redisServers: ServerHandle[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const r of redisServers.splice(0)) await r.stop();
});

async function start(env: Record<string, string>) {
  const service = await createAgentService(loadConfig({ ...quiet, ...env }), {
    model: new LocalModel({ latencyMs: 5 }),
  });
  opened.push(service);
  const url = await service.listen();
  return { service, url };
}

/** Reads a server-sent event stream to its end: [event, data][]. */
async function readEvents(url: string, timeoutMs = 20_000): Promise<[string, unknown][]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('event: '))
    .map((block) => {
      const [ev, data] = block.split('\n');
      return [ev?.slice(7) ?? '', JSON.parse(data?.slice(6) ?? 'null')];
    });
}

function eventsUrl(base: string, id: string): string {
  return `${base}${ROUTES.taskEvents.replace(':id', encodeURIComponent(id))}`;
}

describe('GET /api/task/:id/events', () => {
  it('streams the async agent flow: status, progress, then the result with its sub-tasks', async () => {
    const { url } = await start({ TASK_LATENCY_MS: '2000' });
    const sub = await http(url, 'POST', ROUTES.agentAsync, { task: 'stream me' });
    expect(sub.status).toBe(202);
    const id = sub.json.task_id as string;
    const events = await readEvents(eventsUrl(url, id));
    expect(events[0]?.[0]).toBe('status');
    expect(events[0]?.[1]).toMatchObject({ task_id: id });
    // Sub-tasks take 1 s: the stream opened while the agent task still waited for them.
    expect(events[0]?.[1]).toMatchObject({ status: 'waiting-children' });
    const progress = events.filter(([e]) => e === 'progress').map(([, d]) => d);
    expect(progress).toEqual([{ progress: 10 }, { progress: 90 }]);
    const last = events.at(-1) as [string, { result: Record<string, unknown> }];
    expect(last[0]).toBe('completed');
    expect(last[1].result).toMatchObject({ steps: ['plan', 'llm', 'tool'] });
    expect(Object.values(last[1].result.sub_tasks as object).sort()).toEqual(['plan', 'tool']);
    // A finished task: its stored outcome at once, then the end.
    const again = await readEvents(eventsUrl(url, id));
    expect(again.map(([e]) => e)).toEqual(['status', 'completed']);
    expect(again[1]?.[1]).toEqual({ result: last[1].result });
  });

  it('answers 404 for an unknown task and 400 for a malformed id', async () => {
    const { url } = await start({});
    const missing = await fetch(eventsUrl(url, 'no-such-task'));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      'task_not_found',
    );
    const bad = await fetch(`${url}/api/task/${'%0A'.repeat(3)}/events`);
    expect(bad.status).toBe(400);
  });

  it('streams from an instance without workers, events coming from another over Redis', async () => {
    const server = await startRedisServer();
    redisServers.push(server);
    const api = await start({ REDIS_URL: server.url, WORKERS: '0', INSTANCE_ID: 'api' });
    const sub = await http(api.url, 'POST', ROUTES.agentAsync, { task: 'across instances' });
    const id = sub.json.task_id as string;
    const reading = readEvents(eventsUrl(api.url, id));
    // Start the worker instance only once the stream is open: every event is a live one.
    await new Promise((r) => setTimeout(r, 300));
    await start({
      REDIS_URL: server.url,
      WORKERS: '2',
      INSTANCE_ID: 'worker',
      TASK_LATENCY_MS: '50',
    });
    const events = await reading;
    expect(events[0]).toEqual(['status', { task_id: id, status: 'waiting-children' }]);
    expect(events.filter(([e]) => e === 'progress')).toHaveLength(2);
    const last = events.at(-1) as [string, { result: { worker: string } }];
    expect(last[0]).toBe('completed');
    expect(last[1].result.worker).toBe('worker');
  });
});
