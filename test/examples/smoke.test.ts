/**
 * A smoke run of every example, as a user would start it: each copyable example under examples/
 * (embedded, and on the test Redis / PostgreSQL where it supports them), `npm run demo`, and
 * `npm start` answering and then draining on SIGTERM.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort, servers, uniquePrefix } from '../harness/env.js';
import { ROOT, http, spawnTsx, startService } from './helpers.js';

interface Case {
  file: string;
  env?: () => Record<string, string>;
  expect: RegExp;
}

const CASES: Case[] = [
  { file: 'sessions-express.ts', expect: /22 messages \(expected 22\)/ },
  {
    file: 'sessions-express.ts',
    env: () => ({ REDIS_URL: servers().redisUrl }),
    expect: /22 messages/,
  },
  { file: 'cached-llm-call.ts', expect: /provider calls: 4 \(expected 4\)/ },
  {
    file: 'cached-llm-call.ts',
    env: () => ({ REDIS_URL: servers().redisUrl }),
    expect: /same answer: true/,
  },
  { file: 'worker-process.ts', expect: /10 tasks completed; first: completed/ },
  {
    file: 'worker-process.ts',
    env: () => ({ REDIS_URL: servers().redisUrl, QUEUE: uniquePrefix('example').slice(0, -1) }),
    expect: /10 tasks completed/,
  },
  {
    file: 'db-router.ts',
    env: () => ({
      DATABASE_URL: servers().pgPrimaryUrl,
      DATABASE_REPLICA_URLS: servers().pgReplicaUrls.join(','),
    }),
    expect: /read my own write: true/,
  },
  { file: 'nestjs-decorators.ts', expect: /circuit opened: 3 of 8 calls failed fast/ },
  { file: 'express-app/main.ts', expect: /chat turns kept: 10\/10/ },
  {
    file: 'express-app/main.ts',
    env: () => ({ REDIS_URL: servers().redisUrl }),
    expect: /route="\/api\/chat\/:turn",status="200"\} 10/,
  },
  { file: 'hono-app/main.ts', expect: /session saw: a1,b2,c3/ },
  {
    file: 'hono-app/main.ts',
    env: () => ({ REDIS_URL: servers().redisUrl }),
    expect: /route="\/api\/items\/:id",status="200"\} 3/,
  },
  // NestJS needs legacy decorators: the example's own tsconfig, as its header says.
  {
    file: 'nestjs-app/main.ts',
    env: () => ({ TSX_TSCONFIG_PATH: 'examples/nestjs-app/tsconfig.json' }),
    expect: /quote computed 1 time\(s\) for 3 requests; health: ok/,
  },
  {
    file: 'nestjs-app/main.ts',
    env: () => ({
      TSX_TSCONFIG_PATH: 'examples/nestjs-app/tsconfig.json',
      REDIS_URL: servers().redisUrl,
    }),
    expect: /route="\/api\/quote\/:symbol",status="200"\} 3/,
  },
];

/** The modules' own examples (examples/<module>/*.ts): they run to exit 0. */
const MODULE_CASES: { file: string; env?: () => Record<string, string> }[] = [
  { file: 'session/concurrent-turns.ts' },
  { file: 'session/concurrent-turns.ts', env: () => ({ REDIS_URL: servers().redisUrl }) },
  { file: 'scaling/autoscale.ts' },
  { file: 'scaling/autoscale.ts', env: () => ({ REDIS_URL: servers().redisUrl }) },
  // Its provider is a local stand-in on 127.0.0.1 unless LLM_BASE_URL is set.
  { file: 'resilience/llm-fleet.ts', env: () => ({ REDIS_URL: servers().redisUrl }) },
];

/** Examples that are servers: started on a free port, exercised over HTTP, then stopped. */
const SERVER_CASES: { file: string; exercise: (base: string) => Promise<void> }[] = [
  {
    file: 'observability/server.ts',
    async exercise(base) {
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# (HELP|TYPE) /m);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    },
  },
  {
    file: 'worker/agent-tasks.ts',
    async exercise(base) {
      const sub = await http(base, 'POST', '/api/agent/async?task=hello');
      expect(sub.status).toBe(202);
      let status = '';
      for (let i = 0; i < 100 && status !== 'completed'; i++) {
        status = (await http(base, 'GET', `/api/task/${sub.json.task_id}`)).json.status as string;
        if (status !== 'completed') await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe('completed');
    },
  },
];

function examplesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, 'examples', dir), { withFileTypes: true }).flatMap((e) => {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory())
      return rel === 'agent-service' || rel === 'deploy' ? [] : examplesUnder(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

describe('examples smoke run', () => {
  it('has a smoke case for every example file', () => {
    const covered = new Set([
      ...CASES.map((c) => c.file),
      ...MODULE_CASES.map((c) => c.file),
      ...SERVER_CASES.map((c) => c.file),
    ]);
    expect(examplesUnder('').sort()).toEqual([...covered].sort());
  });

  for (const c of MODULE_CASES) {
    it(`${c.file}${c.env ? ' (servers)' : ''}`, async () => {
      const child = spawnTsx(`examples/${c.file}`, [], { ...process.env, ...(c.env?.() ?? {}) });
      expect(await child.exited, child.output()).toBe(0);
    });
  }

  it.each(SERVER_CASES.map((c) => [c.file, c] as const))('%s serves', async (_name, c) => {
    const port = await freePort();
    const child = spawnTsx(`examples/${c.file}`, [], { ...process.env, PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    try {
      const t0 = Date.now();
      for (;;) {
        if (child.proc.exitCode !== null) throw new Error(`exited early:\n${child.output()}`);
        try {
          await fetch(base, { signal: AbortSignal.timeout(1000) });
          break;
        } catch {
          if (Date.now() - t0 > 50_000) throw new Error(`never listened:\n${child.output()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await c.exercise(base);
    } finally {
      await child.stop('SIGTERM', 10_000);
    }
  });

  it.each(CASES.map((c) => [`${c.file}${c.env ? ' (servers)' : ''}`, c] as const))(
    '%s',
    async (_name, c) => {
      const child = spawnTsx(`examples/${c.file}`, [], { ...process.env, ...(c.env?.() ?? {}) });
      const code = await child.exited;
      expect(code, child.output()).toBe(0);
      expect(child.output()).toMatch(c.expect);
    },
  );

  it('npm run demo ends with its summary and exit 0', async () => {
    const t0 = Date.now();
    const child = spawnTsx('examples/agent-service/demo.ts', [], process.env);
    const code = await child.exited;
    expect(code, child.output()).toBe(0);
    const out = child.output();
    for (const row of [
      'requests',
      'latency p50 / p95',
      'LLM cache hit ratio',
      'tasks completed',
      'breaker trips',
      'spend this hour',
    ]) {
      expect(out).toContain(`| ${row}`);
    }
    expect(out).toMatch(/tasks completed\s+\| 20\/20/);
    expect(out).toMatch(/demo OK/);
    expect(Date.now() - t0).toBeLessThan(45_000);
  });

  it('npm start serves every endpoint embedded, then drains on SIGTERM with exit 0', async () => {
    const env: Record<string, string> = { LLM_LATENCY_MS: '5', TASK_LATENCY_MS: '10' };
    // A fresh clone has no servers: make sure none is picked up from the environment.
    for (const k of [
      'REDIS_URL',
      'REDIS_CLUSTER_NODES',
      'DATABASE_URL',
      'DATABASE_REPLICA_URLS',
      'LLM_BASE_URL',
    ])
      env[k] = '';
    const svc = await startService(env);
    try {
      const chat = await http(svc.url, 'POST', '/api/chat', { message: 'hi' });
      expect(chat.status).toBe(200);
      const task = await http(svc.url, 'POST', '/api/agent/async', { task: 't' });
      expect(task.status).toBe(202);
      for (const path of [
        '/api/scaling',
        '/metrics',
        '/healthz',
        '/readyz',
        `/api/task/${task.json.task_id}`,
      ]) {
        expect((await fetch(svc.url + path)).status, path).toBe(200);
      }
      expect((await http(svc.url, 'GET', '/')).json.mode).toBe('embedded');
      // Sessions are the server's to issue: its own id works, a made-up one is a 404.
      const sid = chat.json.session_id as string;
      expect((await fetch(`${svc.url}/api/session/${sid}`)).status).toBe(200);
      expect((await fetch(`${svc.url}/api/session/made-up-id`)).status).toBe(404);
      const forged = await http(svc.url, 'POST', '/api/chat', {
        session_id: 'made-up',
        message: 'x',
      });
      expect(forged.status).toBe(404);
    } finally {
      expect(await svc.stop('SIGTERM')).toBe(0);
    }
  });

  it('finishes a request that is in flight when SIGTERM arrives', async () => {
    const svc = await startService({
      LLM_LATENCY_MS: '800',
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: '',
      DATABASE_URL: '',
    });
    const inFlight = http(svc.url, 'POST', '/api/chat', { message: 'slow answer please' });
    await new Promise((r) => setTimeout(r, 200));
    const exited = svc.stop('SIGTERM');
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect(r.json.reply).toContain('slow answer please');
    expect(await exited).toBe(0);
  });
});

describe('agent service on real backends', () => {
  it('runs on a Redis Cluster (REDIS_CLUSTER_NODES) with PostgreSQL (DATABASE_URL)', async () => {
    const s = servers();
    const svc = await startService({
      REDIS_CLUSTER_NODES: s.clusterNodes.map((n) => `${n.host}:${n.port}`).join(','),
      DATABASE_URL: s.pgPrimaryUrl,
      DATABASE_REPLICA_URLS: s.pgReplicaUrls.join(','),
      LLM_LATENCY_MS: '5',
      TASK_LATENCY_MS: '10',
      WORKERS: '2',
    });
    try {
      const first = await http(svc.url, 'POST', '/api/chat', { message: 'cluster hello' });
      expect(first.status, JSON.stringify(first.json)).toBe(200);
      const second = await http(svc.url, 'POST', '/api/chat', {
        session_id: first.json.session_id,
        message: 'again',
      });
      expect(second.json.messages).toBe(4);
      // On the Cluster too, an id the service did not issue is unknown.
      expect((await http(svc.url, 'GET', '/api/session/not-issued-here')).status).toBe(404);
      const task = await http(svc.url, 'POST', '/api/agent/async', { task: 'on the cluster' });
      let status = '';
      for (let i = 0; i < 100 && status !== 'completed'; i++) {
        status = (await http(svc.url, 'GET', `/api/task/${task.json.task_id}`)).json
          .status as string;
        if (status !== 'completed') await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe('completed');
      const ready = await http(svc.url, 'GET', '/readyz');
      expect(ready.status, JSON.stringify(ready.json)).toBe(200);
      expect(Object.keys(ready.json.checks as object).sort()).toEqual([
        'database',
        'redis',
        'shutdown',
        'worker',
      ]);
      expect((await http(svc.url, 'GET', '/')).json.mode).toBe('redis-cluster');
    } finally {
      expect(await svc.stop('SIGTERM')).toBe(0);
    }
  });
});
