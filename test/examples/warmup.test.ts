/**
 * The agent service's schedule: WARMUP_PROMPTS are asked by a scheduled task (fired by the
 * service's own worker), so a new conversation opening with one is a cache hit over real HTTP.
 * On Redis, two instances share the schedule: one schedule listed, one task per tick.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { type AgentService, ROUTES, createAgentService } from '../../examples/agent-service/app.js';
import { ConfigError, loadConfig } from '../../examples/agent-service/config.js';
import { LocalModel } from '../../examples/agent-service/llm.js';
import { WARMUP_SCHEDULE } from '../../examples/agent-service/warmup.js';
import { type ServerHandle, startRedisServer } from '../harness/env.js';
import { http } from './helpers.js';

const quiet = { LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1', LLM_LATENCY_MS: '5' };
const opened: AgentService[] = [];
const redisServers: ServerHandle[] = [];

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  for (const r of redisServers.splice(0)) await r.stop();
});

async function start(env: Record<string, string>, model: LocalModel) {
  const service = await createAgentService(loadConfig({ ...quiet, ...env }), { model });
  opened.push(service);
  const url = await service.listen();
  return { service, url };
}

async function until(pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('agent service cache warm-up schedule', () => {
  it('warms the LLM cache so a new conversation is a cache hit (embedded)', async () => {
    const model = new LocalModel({ latencyMs: 5 });
    const { service, url } = await start(
      { WARMUP_PROMPTS: 'what is azscale? | hello warm', WARMUP_EVERY: '0.5' },
      model,
    );
    const [s] = await service.queue.schedules();
    expect(s).toMatchObject({ id: WARMUP_SCHEDULE, every: 0.5, data: { warmup: true } });
    await until(() => service.stats.tasksCompleted >= 1);
    const calls = model.calls;
    const chat = await http(url, 'POST', ROUTES.chat, { message: 'hello warm' });
    expect(chat.status).toBe(200);
    expect(chat.json).toMatchObject({ cached: true });
    expect(model.calls).toBe(calls);
    // The warm-up task is a task like the others, under its per-tick id.
    const tick = Number(s?.next?.getTime());
    await until(
      async () =>
        (await service.queue.getTask(`schedule:${WARMUP_SCHEDULE}:${tick}`))?.status ===
        'completed',
    );
  });

  it('two instances on one Redis share one schedule; its ticks run once each', async () => {
    // A private Redis: the schedule outlives the services, and other tests' services use the
    // same queue name on the shared one.
    const server = await startRedisServer();
    redisServers.push(server);
    const redis = server.url;
    const env = {
      REDIS_URL: redis,
      WARMUP_PROMPTS: `p-${randomBytes(4).toString('hex')}`,
      WARMUP_EVERY: '0.5',
      WORKERS: '2',
    };
    const a = await start({ ...env, INSTANCE_ID: 'a' }, new LocalModel({ latencyMs: 5 }));
    const b = await start({ ...env, INSTANCE_ID: 'b' }, new LocalModel({ latencyMs: 5 }));
    const list = (await a.service.queue.schedules()).filter((x) => x.id === WARMUP_SCHEDULE);
    expect(list).toHaveLength(1);
    const first = Number(list[0]?.next?.getTime());
    // The four ticks from the listed next run each end with one completed task, run once.
    for (let t = first; t < first + 4 * 500; t += 500) {
      const id = `schedule:${WARMUP_SCHEDULE}:${t}`;
      await until(async () => (await a.service.queue.getTask(id))?.status === 'completed');
      expect((await b.service.queue.getTask(id))?.attempts, id).toBe(1);
    }
    expect(a.service.stats.tasksCompleted + b.service.stats.tasksCompleted).toBeGreaterThanOrEqual(
      4,
    );
  });

  it('rejects bad warm-up settings', () => {
    expect(() => loadConfig({ ...quiet, WARMUP_EVERY: '0.1' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...quiet, WARMUP_PROMPTS: Array(51).fill('x').join('|') })).toThrow(
      ConfigError,
    );
    expect(loadConfig({ ...quiet }).warmupPrompts).toEqual([]);
  });
});
