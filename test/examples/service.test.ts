/**
 * The agent service in embedded mode, in process: endpoints, bad input (4xx with a JSON body),
 * the limiter and the breaker as HTTP answers, config validation, and the OpenAI-compatible client
 * against a local stand-in server.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentService, ROUTES, createAgentService } from '../../examples/agent-service/app.js';
import { ConfigError, loadConfig } from '../../examples/agent-service/config.js';
import { LLMCallError, LocalModel } from '../../examples/agent-service/llm.js';
import { newSessionId } from '../../src/session/index.js';
import { servers, startRedisServer } from '../harness/env.js';
import { http, spawnTsx } from './helpers.js';

const quiet = { LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' };

async function start(env: Record<string, string>, model?: LocalModel) {
  const service = await createAgentService(
    loadConfig({ ...quiet, ...env }),
    model ? { model } : {},
  );
  const url = await service.listen();
  return { service, url };
}

describe('agent service (embedded)', () => {
  let service: AgentService;
  let url: string;
  let model: LocalModel;

  beforeAll(async () => {
    model = new LocalModel({ latencyMs: 5 });
    ({ service, url } = await start(
      { LLM_LATENCY_MS: '5', TASK_LATENCY_MS: '10', BODY_LIMIT_BYTES: '4096' },
      model,
    ));
  });
  afterAll(async () => {
    await service?.close();
  });

  it('chats with history, caches identical requests and records spend', async () => {
    const first = await http(url, 'POST', ROUTES.chat, { message: 'hello embedded' });
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ cached: false, messages: 2 });
    const sid = first.json.session_id as string;
    expect(sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    const second = await http(url, 'POST', ROUTES.chat, { session_id: sid, message: 'again' });
    expect(second.json).toMatchObject({ session_id: sid, messages: 4 });
    expect(second.json.reply).toContain('turn 2');
    // A new session with the same first message is the same LLM request: a cache hit.
    const calls = model.calls;
    const hit = await http(url, 'POST', ROUTES.chat, { message: 'hello embedded' });
    expect(hit.json.cached).toBe(true);
    expect(hit.json.reply).toBe(first.json.reply);
    expect(model.calls).toBe(calls);
    const session = await http(url, 'GET', `/api/session/${sid}`);
    expect((session.json.messages as unknown[]).length).toBe(4);
    const scaling = await http(url, 'GET', ROUTES.scaling);
    expect(scaling.status).toBe(200);
    expect((scaling.json.spend as { current: number }).current).toBeGreaterThan(0);
    expect(['up', 'down', 'hold']).toContain((scaling.json.assessment as { scale: string }).scale);
  });

  it('runs async tasks and reports unknown ids as 404', async () => {
    const sub = await http(url, 'POST', ROUTES.agentAsync, { task: 'find three facts' });
    expect(sub.status).toBe(202);
    const id = sub.json.task_id as string;
    let view: Record<string, unknown> = {};
    for (let i = 0; i < 100 && view.status !== 'completed'; i++) {
      view = (await http(url, 'GET', `/api/task/${id}`)).json;
      if (view.status !== 'completed') await new Promise((r) => setTimeout(r, 20));
    }
    expect(view).toMatchObject({ task_id: id, status: 'completed', attempts: 1 });
    expect((view.result as { steps: string[] }).steps).toEqual(['plan', 'llm', 'tool']);
    const missing = await http(url, 'GET', '/api/task/does-not-exist');
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ code: 'task_not_found' });
  });

  it('answers bad requests with 4xx and a JSON error body', async () => {
    const raw = (body: string, type = 'application/json') =>
      fetch(url + ROUTES.chat, { method: 'POST', headers: { 'content-type': type }, body }).then(
        async (r) => ({
          status: r.status,
          json: (await r.json()) as { error: { code: string; message: string } },
        }),
      );
    const malformed = await raw('{"message": ');
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('malformed_json');
    const missing = await raw('{}');
    expect(missing.status).toBe(400);
    expect(missing.json.error.code).toBe('invalid_request');
    expect(missing.json.error.message).toMatch(/message/);
    const wrongType = await raw('{"message": 42}');
    expect(wrongType.status).toBe(400);
    const big = await raw(JSON.stringify({ message: 'x'.repeat(5000) }));
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('body_too_large');
    const media = await raw('message=hi', 'text/plain');
    expect(media.status).toBe(415);
    const badSession = await http(url, 'POST', ROUTES.chat, {
      session_id: 'bad id!',
      message: 'hi',
    });
    expect(badSession.status).toBe(400);
    const badTask = await http(url, 'GET', `/api/task/${encodeURIComponent('bad id!')}`);
    expect(badTask.status).toBe(400);
    const noTask = await http(url, 'POST', ROUTES.agentAsync, { nope: 1 });
    expect(noTask.status).toBe(400);
    const route = await http(url, 'GET', '/api/nothing');
    expect(route.status).toBe(404);
    expect(route.json.error).toMatchObject({ code: 'not_found' });
  });

  it('exposes Prometheus metrics, liveness and readiness', async () => {
    const res = await fetch(url + ROUTES.metrics);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    expect(text).toMatch(
      /^azscale_http_requests_total\{method="POST",route="\/api\/chat",status="200"\} \d+/m,
    );
    expect(text).toMatch(/^azscale_worker_queue_depth\{queue="agent-tasks"\} \d+/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect((await http(url, 'GET', ROUTES.healthz)).status).toBe(200);
    const ready = await http(url, 'GET', ROUTES.readyz);
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.json.checks as object)).toEqual(
      expect.arrayContaining(['shutdown', 'worker']),
    );
  });
});

describe('agent service under pressure', () => {
  it('answers a limiter overflow with 429 + Retry-After and an outage with 503 once the breaker opens', async () => {
    const model = new LocalModel({ latencyMs: 600 });
    const { service, url } = await start(
      {
        SCALE: 'small',
        LLM_MAX_QUEUE: '2',
        BREAKER_FAILURES: '3',
        BREAKER_RECOVERY: '30',
        WORKERS: '0',
      },
      model,
    );
    try {
      const burst = await Promise.all(
        Array.from({ length: 15 }, (_, i) =>
          http(url, 'POST', ROUTES.chat, { message: `burst ${i}` }),
        ),
      );
      const limited = burst.filter((r) => r.status === 429);
      // 5 slots + 2 waiting places: the other 8 are refused at once (fewer if a slot frees up
      // before the last requests arrive on a slow machine), and never more than 5 run at once.
      expect(limited.length).toBeGreaterThanOrEqual(1);
      expect(limited.length).toBeLessThanOrEqual(8);
      expect(burst.filter((r) => r.status === 200)).toHaveLength(15 - limited.length);
      expect(model.maxInFlight).toBe(5);
      for (const r of limited) {
        expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(r.json.error).toMatchObject({ code: 'llm_busy' });
      }
      model.outage = true;
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await http(url, 'POST', ROUTES.chat, { message: `outage ${i}` });
        statuses.push(r.status);
        if (r.status === 503) expect(Number(r.headers.get('retry-after'))).toBe(30);
      }
      expect(statuses).toEqual([502, 502, 502, 503, 503, 503]);
      expect(service.stats.breakerTrips).toBe(1);
    } finally {
      await service.close();
    }
  });

  it('refuses provider calls once the hourly budget is spent, but still serves cache hits', async () => {
    const { service, url } = await start({
      HOURLY_BUDGET: '0.000001',
      LLM_LATENCY_MS: '1',
      WORKERS: '0',
    });
    try {
      const first = await http(url, 'POST', ROUTES.chat, { message: 'spend it all' });
      expect(first.status).toBe(200);
      expect(await service.optimizer.currentSpend()).toBeGreaterThan(0.000001);
      const refused = await http(url, 'POST', ROUTES.chat, { message: 'one more, please' });
      expect(refused.status).toBe(429);
      expect(refused.json.error).toMatchObject({ code: 'budget_exceeded' });
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      // The same first question in a new session is a cache hit: no provider call, no cost.
      const hit = await http(url, 'POST', ROUTES.chat, { message: 'spend it all' });
      expect(hit.status).toBe(200);
      expect(hit.json.cached).toBe(true);
    } finally {
      await service.close();
    }
  });

  it('refuses new work and fails readiness while draining, then closes', async () => {
    const { service, url } = await start({
      WORKERS: '1',
      LLM_LATENCY_MS: '1',
      TASK_LATENCY_MS: '300',
    });
    const sub = await http(url, 'POST', ROUTES.agentAsync, { task: 'slow' });
    expect(sub.status).toBe(202);
    await new Promise((r) => setTimeout(r, 50));
    const closing = service.close();
    expect(service.draining).toBe(true);
    await closing;
    // The task that was running when the drain began finished before close() resolved.
    const t = await service.queue.getTask(sub.json.task_id as string).catch(() => null);
    expect(t === null || t.status === 'completed').toBe(true);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});

/** A request with extra headers (the http helper sends none). */
async function post(base: string, path: string, body: unknown, headers: Record<string, string>) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as Record<string, unknown>,
  };
}

describe('agent service against hostile clients (issue 13)', () => {
  it('serves only session ids it issued: a made-up or guessed id is a 404 and creates nothing', async () => {
    const { service, url } = await start({ WORKERS: '0', LLM_LATENCY_MS: '1' });
    try {
      const issued = await http(url, 'POST', ROUTES.chat, { message: 'my own session' });
      expect(issued.status).toBe(200);
      const sid = issued.json.session_id as string;
      expect((await http(url, 'GET', `/api/session/${sid}`)).status).toBe(200);
      // A client-chosen id, a well-formed random one (what guessing looks like) and a
      // neighbour of the issued one.
      const flip = sid.slice(0, -1) + (sid.endsWith('A') ? 'B' : 'A');
      for (const forged of ['my-chosen-id', newSessionId(), flip]) {
        const chat = await http(url, 'POST', ROUTES.chat, { session_id: forged, message: 'hi' });
        expect(chat.status, forged).toBe(404);
        expect(chat.json.error).toMatchObject({ code: 'session_not_found' });
        const read = await http(url, 'GET', `/api/session/${forged}`);
        expect(read.status, forged).toBe(404);
        expect(read.json.error).toMatchObject({ code: 'session_not_found' });
        // Nothing was written under the forged id.
        expect((await service.sessions.getSession(forged)).messages).toEqual([]);
      }
      // The issued session was not touched by any of that.
      const after = await http(url, 'GET', `/api/session/${sid}`);
      expect((after.json.messages as unknown[]).length).toBe(2);
    } finally {
      await service.close();
    }
  });

  it('gives each client address its own request budget on /api/chat and /api/agent/async (429 + Retry-After)', async () => {
    const { service, url } = await start({
      WORKERS: '0',
      LLM_LATENCY_MS: '1',
      CHAT_RATE_LIMIT: '3',
      TASK_RATE_LIMIT: '2',
      TRUST_PROXY: 'true',
    });
    try {
      const from = (ip: string) => ({ 'x-forwarded-for': ip });
      const chats = [];
      for (let i = 0; i < 4; i++) {
        chats.push(await post(url, ROUTES.chat, { message: `budget ${i}` }, from('10.0.0.1')));
      }
      expect(chats.map((r) => r.status)).toEqual([200, 200, 200, 429]);
      const refused = chats[3]!;
      expect(refused.json.error).toMatchObject({ code: 'rate_limited' });
      // 3 per minute: the next request fits in about 20 s.
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(21);
      // Another client is not affected.
      expect((await post(url, ROUTES.chat, { message: 'other' }, from('10.0.0.2'))).status).toBe(
        200,
      );

      const tasks = [];
      for (let i = 0; i < 3; i++) {
        tasks.push(await post(url, ROUTES.agentAsync, { task: `t${i}` }, from('10.0.0.1')));
      }
      expect(tasks.map((r) => r.status)).toEqual([202, 202, 429]);
      expect(Number(tasks[2]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(service.stats.rejectedByRateLimit).toBe(2);
    } finally {
      await service.close();
    }
  });

  it('bounds the task queue (MAX_QUEUED): 429 + Retry-After when it is full', async () => {
    // An agent task is a flow of 3 tasks: 2 sub-tasks wait for a worker, the agent task waits for
    // them (not counted as waiting). A flow is admitted while waiting + 3 <= MAX_QUEUED.
    const { service, url } = await start({ WORKERS: '0', MAX_QUEUED: '7', TASK_RATE_LIMIT: '0' });
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof http>> | undefined;
      for (let i = 0; i < 5; i++) {
        last = await http(url, 'POST', ROUTES.agentAsync, { task: `fill ${i}` });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([202, 202, 202, 429, 429]);
      expect(last!.json.error).toMatchObject({ code: 'queue_full' });
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await service.queue.stats()).queued).toBe(6);
    } finally {
      await service.close();
    }
  });

  it('keeps a long conversation going by dropping its oldest turns (SESSION_MAX_BYTES)', async () => {
    const { service, url } = await start({
      WORKERS: '0',
      LLM_LATENCY_MS: '1',
      SESSION_MAX_BYTES: '4096',
      CHAT_RATE_LIMIT: '0',
    });
    try {
      let sid: string | undefined;
      for (let i = 0; i < 40; i++) {
        const r = await http(url, 'POST', ROUTES.chat, {
          ...(sid ? { session_id: sid } : {}),
          message: `turn ${i} ${'x'.repeat(200)}`,
        });
        expect(r.status, JSON.stringify(r.json)).toBe(200);
        sid = r.json.session_id as string;
      }
      const stored = await service.sessions.getSession(sid!);
      expect(Buffer.byteLength(JSON.stringify(stored))).toBeLessThanOrEqual(4096);
      const users = stored.messages.filter((m) => m.role === 'user').map((m) => m.content);
      expect(users.at(-1)).toMatch(/^turn 39 /);
      expect(users.length).toBeLessThan(40);
      expect(stored.messages.at(-1)?.role).toBe('assistant');
    } finally {
      await service.close();
    }
  });

  it('never shows a server address in /readyz or a task error', async () => {
    const redis = await startRedisServer();
    const failing = {
      kind: 'failing',
      calls: 0,
      async complete(): Promise<never> {
        this.calls++;
        throw new LLMCallError(
          'upstream redis://10.9.8.7:6379 refused: connect ECONNREFUSED 10.9.8.7:6379',
          503,
        );
      },
    };
    const service = await createAgentService(
      loadConfig({ ...quiet, REDIS_URL: redis.url, WORKERS: '1', TASK_LATENCY_MS: '1' }),
      { model: failing },
    );
    const url = await service.listen();
    try {
      const sub = await http(url, 'POST', ROUTES.agentAsync, { task: 'fail loudly' });
      expect(sub.status).toBe(202);
      let view: Record<string, unknown> = {};
      for (let i = 0; i < 300 && view.status !== 'failed'; i++) {
        view = (await http(url, 'GET', `/api/task/${sub.json.task_id}`)).json;
        if (view.status !== 'failed') await new Promise((r) => setTimeout(r, 50));
      }
      expect(view.status).toBe('failed');
      expect(String(view.error)).toContain('[redacted]');
      expect(JSON.stringify(view)).not.toMatch(/10\.9\.8\.7|6379|redis:\/\//);

      await redis.kill('SIGKILL');
      const ready = await http(url, 'GET', ROUTES.readyz, undefined, 10_000);
      expect(ready.status).toBe(503);
      const body = JSON.stringify(ready.json);
      expect(body).not.toContain(String(redis.port));
      expect(body).not.toContain('127.0.0.1');
      expect(body).not.toContain('redis://');
      const chat = await http(url, 'POST', ROUTES.chat, { message: 'down' }, 10_000);
      expect(chat.status).toBe(503);
      expect(JSON.stringify(chat.json)).not.toContain(String(redis.port));
    } finally {
      await service.close();
      await redis.stop().catch(() => {});
    }
  }, 60_000);
});

describe('configuration', () => {
  it('reports every bad variable at once, without echoing URLs', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        SCALE: 'huge',
        REDIS_URL: 'redis://user:s3cret@h:6379',
        REDIS_CLUSTER_NODES: 'a:1,b',
        LLM_FAILURE_RATE: '2',
        DATABASE_REPLICA_URLS: 'postgresql://r/db',
        LLM_BASE_URL: 'not a url',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const v of [
      'PORT',
      'SCALE',
      'REDIS_CLUSTER_NODES',
      'LLM_FAILURE_RATE',
      'DATABASE_REPLICA_URLS',
      'LLM_BASE_URL',
    ]) {
      expect(problems).toContain(v);
    }
    expect(problems).toContain('either REDIS_URL or REDIS_CLUSTER_NODES');
    expect(problems).not.toContain('s3cret');
  });

  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      scale: 'medium',
      workers: 4,
      llmModel: 'gpt-4o-mini',
    });
    expect(c.redisUrl).toBeUndefined();
    expect(c.preset.llm_concurrent_requests).toBe(10);
  });

  it('exits 2 with the problems listed when started with a bad configuration', async () => {
    const child = spawnTsx('examples/agent-service/main.ts', [], {
      ...process.env,
      PORT: '-1',
      SCALE: 'nope',
    });
    expect(await child.exited).toBe(2);
    expect(child.output()).toMatch(/PORT must be an integer >= 0/);
    expect(child.output()).toMatch(/SCALE must be one of/);
  });
});

describe('OpenAI-compatible LLM and PostgreSQL conversation log', () => {
  let fake: Server;
  const seen: { auth?: string; body: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    fake = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const parsed = JSON.parse(body) as { messages: { content: string }[] };
        seen.push({ auth: req.headers.authorization, body: parsed });
        if (req.url !== '/v1/chat/completions') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            model: 'fake-model',
            choices: [
              {
                message: { role: 'assistant', content: `echo: ${parsed.messages.at(-1)?.content}` },
              },
            ],
            usage: { prompt_tokens: 11, completion_tokens: 7 },
          }),
        );
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    fake.closeAllConnections();
    await new Promise((r) => fake.close(r));
  });

  it('calls LLM_BASE_URL with the key and model, and logs the conversation through DatabaseRouter', async () => {
    const s = servers();
    const { port } = fake.address() as AddressInfo;
    const { service, url } = await start({
      LLM_BASE_URL: `http://127.0.0.1:${port}/v1/`,
      LLM_API_KEY: 'sk-test',
      LLM_MODEL: 'gpt-4o-mini',
      WORKERS: '0',
      DATABASE_URL: s.pgPrimaryUrl,
      DATABASE_REPLICA_URLS: s.pgReplicaUrls.join(','),
    });
    try {
      const r = await http(url, 'POST', ROUTES.chat, { message: 'ping the fake' });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.reply).toBe('echo: ping the fake');
      const last = seen.at(-1)!;
      expect(last.auth).toBe('Bearer sk-test');
      expect(last.body).toMatchObject({ model: 'gpt-4o-mini', temperature: 0 });
      // The provider's usage (11 in, 7 out) priced as gpt-4o-mini.
      expect(await service.optimizer.currentSpend()).toBeCloseTo((11 * 0.15 + 7 * 0.6) / 1e6, 12);
      const rows = await service.db!.write<{ role: string; content: string }>(
        'SELECT role, content FROM agent_conversation_log WHERE session_id = $1 ORDER BY id',
        [r.json.session_id],
      );
      expect(rows.rows).toEqual([
        { role: 'user', content: 'ping the fake' },
        { role: 'assistant', content: 'echo: ping the fake' },
      ]);
      const ready = await http(url, 'GET', ROUTES.readyz);
      expect(Object.keys(ready.json.checks as object)).toContain('database');
    } finally {
      await service.close();
    }
  });
});
