/**
 * The scale-out proof: one Redis, two instances of the agent service (child processes, as
 * `npm start` runs them) and a real nginx in front with the seed's least_conn upstream from
 * examples/deploy/nginx/least-conn.conf.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, freePort, startRedisServer } from '../harness/env.js';
import {
  type NginxHandle,
  type ServiceChild,
  http,
  localNginxConfig,
  startNginx,
  startService,
} from './helpers.js';

interface TaskView {
  task_id: string;
  status: string;
  result?: { worker: string; submitted_by: string; answer: string };
}

async function waitAllDone(
  base: string,
  ids: string[],
  timeoutMs: number,
): Promise<Map<string, TaskView>> {
  const done = new Map<string, TaskView>();
  const t0 = Date.now();
  while (done.size < ids.length && Date.now() - t0 < timeoutMs) {
    await Promise.all(
      ids
        .filter((id) => !done.has(id))
        .map(async (id) => {
          const r = await http(base, 'GET', `/api/task/${id}`);
          if (r.status === 200 && (r.json.status === 'completed' || r.json.status === 'failed')) {
            done.set(id, r.json as unknown as TaskView);
          }
        }),
    );
    if (done.size < ids.length) await new Promise((r) => setTimeout(r, 100));
  }
  return done;
}

describe('scale-out behind nginx (least_conn)', () => {
  let redis: ServerHandle;
  let a: ServiceChild;
  let b: ServiceChild;
  let nginx: NginxHandle;

  beforeAll(async () => {
    redis = await startRedisServer();
    const common = {
      REDIS_URL: redis.url,
      WORKERS: '2',
      LLM_LATENCY_MS: '20',
      TASK_LATENCY_MS: '150',
      SHUTDOWN_TIMEOUT: '10',
      BREAKER_RECOVERY: '5',
      // Every request of this test comes from one address (the test, through nginx): the
      // per-client budgets must not be what refuses work here.
      CHAT_RATE_LIMIT: '6000',
      TASK_RATE_LIMIT: '6000',
    };
    [a, b] = await Promise.all([
      startService({ ...common, INSTANCE_ID: 'A' }),
      startService({ ...common, INSTANCE_ID: 'B' }),
    ]);
    const port = await freePort();
    nginx = await startNginx(
      localNginxConfig('least-conn.conf', [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], port),
      port,
    );
  });

  afterAll(async () => {
    await nginx?.stop();
    await Promise.all([a?.stop('SIGKILL'), b?.stop('SIGKILL')]);
    await redis?.stop();
  });

  it('keeps the full history of a conversation whose requests land on both instances', async () => {
    const served = new Set<string>();
    let sessionId: string | undefined;
    const turns = 12;
    for (let i = 0; i < turns; i++) {
      const r = await http(nginx.url, 'POST', '/api/chat', {
        ...(sessionId ? { session_id: sessionId } : {}),
        message: `turn ${i}`,
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      sessionId = r.json.session_id as string;
      served.add(r.headers.get('x-instance-id') ?? '?');
      expect(r.json.messages).toBe(2 * (i + 1));
      // The stand-in numbers the turn from the history it was given: the whole history reached it.
      expect(r.json.reply).toContain(`turn ${i + 1} of our conversation`);
    }
    expect([...served].sort()).toEqual(['A', 'B']);

    // Parallel turns of one session through both instances: none lost (atomic appends).
    const parallel = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        http(nginx.url, 'POST', '/api/chat', { session_id: sessionId, message: `parallel ${i}` }),
      ),
    );
    expect(parallel.map((r) => r.status)).toEqual(Array(10).fill(200));

    for (const base of [a.url, b.url]) {
      const s = await http(base, 'GET', `/api/session/${sessionId}`);
      const messages = s.json.messages as { role: string; content: string }[];
      expect(messages).toHaveLength(2 * turns + 20);
      const users = messages.filter((m) => m.role === 'user').map((m) => m.content);
      expect(users.slice(0, turns)).toEqual(Array.from({ length: turns }, (_, i) => `turn ${i}`));
      expect(users.slice(turns).sort()).toEqual(
        Array.from({ length: 10 }, (_, i) => `parallel ${i}`).sort(),
      );
    }
  });

  it("completes a task submitted through one instance on the other's worker", async () => {
    // Submitted straight to A; A has 2 task slots, so B's worker takes its share of the stream.
    const ids = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const r = await http(a.url, 'POST', '/api/agent/async', { task: `cross-instance ${i}` });
        expect(r.status).toBe(202);
        expect(r.json.status).toBe('queued');
        return r.json.task_id as string;
      }),
    );
    // Looked up through nginx, i.e. through either instance.
    const done = await waitAllDone(nginx.url, ids, 20_000);
    expect(done.size).toBe(ids.length);
    const views = [...done.values()];
    expect(views.every((v) => v.status === 'completed')).toBe(true);
    expect(views.every((v) => v.result?.submitted_by === 'A')).toBe(true);
    expect(views.some((v) => v.result?.worker === 'B')).toBe(true);
    const unknown = await http(nginx.url, 'GET', '/api/task/no-such-task');
    expect(unknown.status).toBe(404);
  });

  it('loses no accepted task when one instance stops mid-run', async () => {
    const accepted: string[] = [];
    const submit = async (label: string) => {
      try {
        const r = await http(nginx.url, 'POST', '/api/agent/async', { task: label });
        if (r.status === 202) accepted.push(r.json.task_id as string);
        else expect([502, 503]).toContain(r.status); // refused, never accepted
      } catch {
        // a connection cut during the stop: not accepted either
      }
    };
    await Promise.all(Array.from({ length: 30 }, (_, i) => submit(`before stop ${i}`)));
    expect(accepted).toHaveLength(30);

    // Tasks are running on both instances now; stop B while more are submitted.
    await new Promise((r) => setTimeout(r, 300));
    const stopping = b.stop('SIGTERM');
    await Promise.all(Array.from({ length: 20 }, (_, i) => submit(`during stop ${i}`)));
    expect(await stopping).toBe(0);
    await Promise.all(Array.from({ length: 10 }, (_, i) => submit(`after stop ${i}`)));
    expect(accepted.length).toBeGreaterThanOrEqual(40);

    const done = await waitAllDone(nginx.url, accepted, 40_000);
    const missing = accepted.filter((id) => done.get(id)?.status !== 'completed');
    expect(missing, `tasks not completed: ${missing.join(', ')}`).toEqual([]);
    const views = [...done.values()];
    // Work B accepted but had not run when it stopped was finished by A.
    expect(views.some((v) => v.result?.submitted_by === 'B' && v.result.worker === 'A')).toBe(true);
  });

  it('shares the LLM circuit: failures on one instance open it for the others', async () => {
    // C's model fails every call; A's is healthy. They share the breaker through Redis.
    const c = await startService({
      REDIS_URL: redis.url,
      INSTANCE_ID: 'C',
      WORKERS: '0',
      LLM_LATENCY_MS: '5',
      LLM_FAILURE_RATE: '1',
      BREAKER_RECOVERY: '5',
    });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await http(c.url, 'POST', '/api/chat', { message: `failing on C ${i}` });
        expect(r.status).toBe(502);
      }
      expect((await http(c.url, 'POST', '/api/chat', { message: 'C again' })).status).toBe(503);
      let seen: { status: number; json: Record<string, unknown> } | undefined;
      const t0 = Date.now();
      while (Date.now() - t0 < 3000) {
        seen = await http(a.url, 'POST', '/api/chat', {
          message: `A during the outage ${Date.now()}`,
        });
        if (seen.status === 503) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(seen?.status).toBe(503);
      expect(seen?.json.error).toMatchObject({ code: 'llm_unavailable' });
    } finally {
      await c.stop('SIGTERM');
    }
  });

  it('answers 503 with Retry-After, without hanging, while Redis is down', async () => {
    await redis.kill('SIGKILL');
    const t0 = Date.now();
    const r = await http(a.url, 'POST', '/api/chat', { message: 'is anyone there?' }, 10_000);
    // REDIS_TIMEOUT (2 s) bounds the wait.
    expect(Date.now() - t0).toBeLessThan(4500);
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(r.json.error).toMatchObject({ code: 'backend_unavailable' });
    for (const [method, path, body] of [
      ['POST', '/api/agent/async', { task: 'while redis is down' }],
      ['GET', '/api/task/some-task', undefined],
    ] as const) {
      const t1 = Date.now();
      const res = await http(a.url, method, path, body, 10_000);
      expect(Date.now() - t1, path).toBeLessThan(4500);
      expect(res.status, path).toBe(503);
      expect(res.headers.get('retry-after'), path).not.toBeNull();
    }
    const ready = await http(a.url, 'GET', '/readyz', undefined, 5000);
    expect(ready.status).toBe(503);
    const live = await http(a.url, 'GET', '/healthz', undefined, 5000);
    expect(live.status).toBe(200);
    expect(a.proc.exitCode).toBeNull();
  });
});
