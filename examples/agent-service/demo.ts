/**
 * `npm run demo`: starts the agent service (embedded, no servers needed), drives a short scripted
 * load against it over HTTP and prints a summary. Phases:
 *   1. chats in parallel sessions (repeated scripts, so the LLM cache gets hits)
 *   2. async agent tasks, polled until done
 *   3. a burst of distinct chats that overflows the LLM concurrency limiter (429 + Retry-After)
 *   4. an injected LLM outage that opens the circuit breaker (503 + Retry-After), then recovery
 * Exits 0 when every phase showed what it should, 1 otherwise. Takes about 10 seconds.
 */
import { createAgentService } from './app.js';
import { loadConfig } from './config.js';
import { LocalModel } from './llm.js';

const SESSIONS = 8;
const SCRIPTS = [
  ['Hello!', 'What can you do?', 'Summarise our chat.', 'Thanks, bye.'],
  ['Hi there', 'Plan a trip to Lisbon', 'Make it cheaper', 'Great'],
  ['Good morning', 'Explain horizontal scaling', 'And vertical?', 'Which is better for LLM apps?'],
  ['Hey', 'Write a haiku about Redis', 'Another one', 'Perfect'],
];
const TASKS = 20;
const BURST = 40;
const OUTAGE_CALLS = 10;

const out = process.stdout;
const tty = out.isTTY === true;

interface Sample {
  status: number;
  ms: number;
}

async function main(): Promise<void> {
  const started = performance.now();
  const config = loadConfig({
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    SCALE: 'small', // llm_concurrent_requests = 5
    LLM_LATENCY_MS: '120',
    LLM_MAX_QUEUE: '10',
    LLM_QUEUE_TIMEOUT: '2',
    BREAKER_FAILURES: '5',
    BREAKER_RECOVERY: '2',
    TASK_LATENCY_MS: '60',
    WORKERS: '4',
    // One client sends every request of the demo: its per-client budgets must not be the limit
    // the burst phase shows (that is the LLM concurrency limiter's job).
    CHAT_RATE_LIMIT: '6000',
    TASK_RATE_LIMIT: '6000',
    // The demo is embedded by design, whatever the shell has set.
    REDIS_URL: '',
    REDIS_CLUSTER_NODES: '',
    DATABASE_URL: '',
    DATABASE_REPLICA_URLS: '',
    LLM_BASE_URL: '',
  });
  const model = new LocalModel({ latencyMs: config.llmLatencyMs, seed: config.llmSeed });
  const service = await createAgentService(config, { model });
  const base = await service.listen();
  out.write(
    `azscale demo: agent service on ${base} (embedded, preset small, LLM stand-in ${config.llmLatencyMs} ms)\n\n`,
  );

  const total = SESSIONS * SCRIPTS[0]!.length + TASKS * 2 + BURST + OUTAGE_CALLS + 1;
  let done = 0;
  let phase = '';
  const samples: Sample[] = [];
  const bar = () => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(done).padStart(3)}/${total}  ${phase}`;
    if (tty) out.write(`\r${line.padEnd(78)}`);
  };
  const setPhase = (name: string) => {
    phase = name;
    if (tty) bar();
    else out.write(`  ${name}\n`);
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const t0 = performance.now();
    const res = await fetch(base + path, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    samples.push({ status: res.status, ms: performance.now() - t0 });
    return { status: res.status, json, retryAfter: res.headers.get('retry-after') };
  };
  const tick = () => {
    done++;
    bar();
  };

  // 1. Conversations: every session runs its script turn by turn; sessions run in parallel.
  setPhase('1/4 chats in parallel sessions');
  const finalLengths = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, s) => {
      const script = SCRIPTS[s % SCRIPTS.length]!;
      let sessionId: string | undefined;
      let length = 0;
      for (const message of script) {
        const r = await call('POST', '/api/chat', {
          ...(sessionId ? { session_id: sessionId } : {}),
          message,
        });
        if (r.status !== 200)
          throw new Error(`chat answered ${r.status}: ${JSON.stringify(r.json)}`);
        sessionId = r.json.session_id as string;
        length = r.json.messages as number;
        tick();
      }
      return length;
    }),
  );

  // 2. Async agent tasks: submit, then poll each until it is done.
  setPhase('2/4 async agent tasks');
  const ids = await Promise.all(
    Array.from({ length: TASKS }, async (_, i) => {
      const r = await call('POST', '/api/agent/async', { task: `research topic #${i % 10}` });
      tick();
      return r.json.task_id as string;
    }),
  );
  let completed = 0;
  await Promise.all(
    ids.map(async (id) => {
      for (let i = 0; i < 200; i++) {
        const r = await call('GET', `/api/task/${id}`);
        if (r.json.status === 'completed') {
          completed++;
          break;
        }
        if (r.json.status === 'failed') break;
        await new Promise((res) => setTimeout(res, 50));
      }
      tick();
    }),
  );

  // 3. A burst of distinct prompts: 5 run, 10 wait, the rest are refused at once with 429.
  setPhase('3/4 burst: overflow the LLM limiter');
  const burst = await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      const r = await call('POST', '/api/chat', {
        message: `burst question ${i} at ${Date.now()}`,
      });
      tick();
      return r;
    }),
  );
  const limited = burst.filter((r) => r.status === 429);

  // 4. The provider goes down: 5 failures open the circuit, the rest fail fast with 503.
  setPhase('4/4 LLM outage: circuit breaker');
  model.outage = true;
  const outage: { status: number; retryAfter: string | null }[] = [];
  for (let i = 0; i < OUTAGE_CALLS; i++) {
    const r = await call('POST', '/api/chat', { message: `during the outage ${i} ${Date.now()}` });
    outage.push({ status: r.status, retryAfter: r.retryAfter });
    tick();
  }
  const fastFails = outage.filter((r) => r.status === 503 && r.retryAfter !== null).length;
  model.outage = false;
  // After BREAKER_RECOVERY seconds the breaker lets a trial call through and closes again.
  await new Promise((res) => setTimeout(res, config.breakerRecovery * 1000 + 100));
  const recovered = await call('POST', '/api/chat', { message: `after the outage ${Date.now()}` });
  tick();
  setPhase('done');
  if (tty) out.write('\n');

  const scaling = (await (await fetch(`${base}/api/scaling`)).json()) as {
    assessment: { scale: string; direction: string; reasons: string[] };
    spend: { current: number; budget: number };
  };
  const st = service.stats;
  await service.close();

  const lat = samples.map((s) => s.ms).sort((a, b) => a - b);
  const p = (q: number) => lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] ?? 0;
  const byClass = (lo: number) =>
    samples.filter((s) => s.status >= lo && s.status < lo + 100).length;
  const lookups = st.cacheHits + st.cacheMisses;
  const rows: [string, string][] = [
    [
      'requests',
      `${samples.length} (2xx ${byClass(200)}, 4xx ${byClass(400)}, 5xx ${byClass(500)})`,
    ],
    ['latency p50 / p95', `${p(0.5).toFixed(1)} ms / ${p(0.95).toFixed(1)} ms`],
    [
      'conversations',
      `${SESSIONS} sessions, ${finalLengths.reduce((a, b) => a + b, 0)} messages kept`,
    ],
    [
      'LLM cache hit ratio',
      `${lookups ? ((st.cacheHits / lookups) * 100).toFixed(1) : '0.0'} % (${st.cacheHits}/${lookups})`,
    ],
    [
      'LLM calls made',
      `${st.llmCalls}, at most ${model.maxInFlight} at once (limit ${config.preset.llm_concurrent_requests})`,
    ],
    ['tasks completed', `${completed}/${TASKS}`],
    ['limiter rejections', `${limited.length} of ${BURST} burst requests (429 + Retry-After)`],
    ['breaker trips', `${st.breakerTrips} (${fastFails} calls failed fast with 503 + Retry-After)`],
    [
      'after recovery',
      recovered.status === 200 ? 'chat answered 200' : `chat answered ${recovered.status}`,
    ],
    ['spend this hour', `$${scaling.spend.current.toFixed(6)} of $${scaling.spend.budget} budget`],
    ['advisor', `${scaling.assessment.scale} (${scaling.assessment.reasons[0] ?? 'no signal'})`],
    ['wall time', `${((performance.now() - started) / 1000).toFixed(1)} s`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  const line = `+${'-'.repeat(w + 2)}+${'-'.repeat(62)}+`;
  out.write(`\n${line}\n`);
  for (const [k, v] of rows) out.write(`| ${k.padEnd(w)} | ${v.slice(0, 60).padEnd(60)} |\n`);
  out.write(`${line}\n`);

  const problems = [
    completed === TASKS ? '' : `only ${completed}/${TASKS} tasks completed`,
    st.cacheHits > 0 ? '' : 'no LLM cache hits',
    limited.length > 0 ? '' : 'the burst never tripped the limiter',
    model.maxInFlight <= config.preset.llm_concurrent_requests
      ? ''
      : 'the limiter let too many calls run',
    st.breakerTrips > 0 && fastFails > 0 ? '' : 'the outage never opened the breaker',
    recovered.status === 200 ? '' : 'the service did not recover after the outage',
  ].filter(Boolean);
  if (problems.length > 0) {
    out.write(`\ndemo FAILED: ${problems.join('; ')}\n`);
    process.exitCode = 1;
  } else {
    out.write('\ndemo OK\n');
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
