/**
 * The agent service: the seed's chat and async-agent endpoints on azscale primitives.
 *
 * - POST /api/chat            history in DistributedSessionManager, one answer through azscale's
 *                             LLM pipeline: cache, hourly budget, (fleet-wide, with Redis)
 *                             concurrency limit, circuit breaker, timeout, spend from usage. The
 *                             server issues session ids (newSessionId); an id it did not issue, or
 *                             whose session expired, is a 404. Long conversations drop their
 *                             oldest messages by bytes.
 * - POST /api/chat/stream     the same, streamed as server-sent events through the AI SDK
 *                             (streamText + azscaleMiddleware on the same pipeline)
 * - POST /api/agent/async     submits to a TaskQueue (bounded: 429 when full); BackgroundWorker
 *                             runs it
 * - GET  /api/task/:id        status and result (404 for unknown ids)
 * - GET  /api/task/:id/events the task's progress and result as server-sent events
 *                             (task-events.ts); the async agent is a flow of sub-tasks
 *                             (agent-flow.ts)
 * - GET  /api/session/:id     the conversation so far (404 for ids the server did not issue)
 * - a schedule (WARMUP_PROMPTS, WARMUP_EVERY) keeps common first messages in the LLM cache; the
 *   queue's workers fire it, one task per tick across the fleet (warmup.ts)
 *
 * Both POST routes have a per-client request budget (RateLimiter keyed by client address,
 * fleet-wide with Redis): 429 with Retry-After beyond it. Public answers never name a server
 * address (redact.ts).
 * - GET  /api/scaling         ScalingAdvisor verdict + this hour's spend
 * - GET  /metrics, /healthz, /readyz, /startupz (azscalePlugin, which also drains on close)
 *
 * In your project, import from 'azscale/...' instead of '../../src/...'.
 */
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify';
import { collectDefaultMetrics } from 'prom-client';
import { azscaleMiddleware } from '../../src/ai/index.js';
import { DistributedCache } from '../../src/cache/index.js';
import { createDashboard } from '../../src/dashboard/index.js';
import {
  RedisConnection,
  isBackendUnavailableError,
  isBudgetExceededError,
  isCircuitOpenError,
  isClosedError,
  isLimitExceededError,
  isTimeoutError,
  isValidationError,
} from '../../src/core/index.js';
import { DatabaseRouter } from '../../src/db/index.js';
import { azscalePlugin } from '../../src/fastify/index.js';
import { LLMPipeline, type LLMModelCall, statusOf } from '../../src/llm/index.js';
import { HealthRegistry, Metrics } from '../../src/observability/index.js';
import {
  CircuitBreaker,
  ConcurrencyLimiter,
  type HttpPool,
  createHttpPool,
} from '../../src/resilience/index.js';
import { CostOptimizer, ScalingAdvisor, type ScalingAssessment } from '../../src/scaling/index.js';
import { DistributedSessionManager, newSessionId } from '../../src/session/index.js';
import { BackgroundWorker, type TaskContext, TaskQueue } from '../../src/worker/index.js';
import { ClientLimits } from './client-limits.js';
import { type AISdk, loadAISdk } from './ai-sdk.js';
import { type AgentServiceConfig, redisInput } from './config.js';
import {
  type ChatCompletion,
  type ChatMessage,
  type ChatModel,
  type ChatRequest,
  LLMCallError,
  LocalModel,
  OpenAICompatibleModel,
} from './llm.js';
import { redact } from './redact.js';
import { WARMUP_TASK, registerWarmup, runWarmup } from './warmup.js';
import { AGENT_STEP, agentFlow, agentStepHandler } from './agent-flow.js';
import { streamTaskEvents } from './task-events.js';
import { type StandinServer, serveChatModel } from './standin-server.js';

/** The routes, in one place: tests and the deploy templates check against these. */
export const ROUTES = Object.freeze({
  chat: '/api/chat',
  chatStream: '/api/chat/stream',
  agentAsync: '/api/agent/async',
  task: '/api/task/:id',
  taskEvents: '/api/task/:id/events',
  session: '/api/session/:id',
  scaling: '/api/scaling',
  metrics: '/metrics',
  healthz: '/healthz',
  readyz: '/readyz',
});

/** Names of the service's own metrics (before the `azscale_` prefix). */
export const SERVICE_METRICS = Object.freeze({
  requests: 'http_requests_total',
  errors: 'http_errors_total',
  latency: 'http_request_duration_seconds',
  queueDepth: 'worker_queue_depth',
  llmCache: 'agent_llm_cache_lookups_total',
  breakerTrips: 'agent_llm_breaker_trips_total',
});

/** The task queue's name (also the `queue` label the HPA's queue_depth selector matches). */
export const QUEUE_NAME = 'agent-tasks';

const ID_PATTERN = '^[A-Za-z0-9_-]{1,128}$';
const SYSTEM_PROMPT: ChatMessage = {
  role: 'system',
  content: 'You are a helpful agent. Answer briefly.',
};

/** Counters the demo and tests read without parsing /metrics. */
export interface ServiceStats {
  chats: number;
  llmCalls: number;
  cacheHits: number;
  cacheMisses: number;
  breakerTrips: number;
  tasksSubmitted: number;
  tasksCompleted: number;
  tasksFailed: number;
  rejectedByLimiter: number;
  rejectedByBreaker: number;
  /** Requests refused by a client's request budget (429). */
  rejectedByRateLimit: number;
  /** Task submissions refused because the queue was full (429). */
  rejectedByQueue: number;
}

/** A running (or ready to run) service. */
export interface AgentService {
  readonly app: FastifyInstance;
  readonly config: AgentServiceConfig;
  readonly model: ChatModel;
  readonly metrics: Metrics;
  readonly sessions: DistributedSessionManager;
  readonly cache: DistributedCache;
  readonly queue: TaskQueue;
  readonly worker: BackgroundWorker<TaskData> | undefined;
  readonly limiter: ConcurrencyLimiter;
  /** Per-client request budgets of /api/chat and /api/agent/async. */
  readonly clientLimits: ClientLimits;
  readonly breaker: CircuitBreaker;
  readonly optimizer: CostOptimizer;
  readonly advisor: ScalingAdvisor;
  readonly db: DatabaseRouter | undefined;
  readonly stats: ServiceStats;
  /** True once shutdown started: readiness fails and new work is refused. */
  readonly draining: boolean;
  /** Starts the worker and the HTTP listener; resolves to the base URL. */
  listen(): Promise<string>;
  /** Graceful stop: refuse new requests, finish in-flight ones and running tasks, close backends. */
  close(): Promise<void>;
}

/** Options for tests and the demo. */
export interface CreateAgentServiceOptions {
  /** Use this model instead of the one the config names. */
  model?: ChatModel;
}

interface ChatBody {
  session_id?: string;
  message: string;
}
interface TaskBody {
  task: string;
}
export interface TaskData {
  task: string;
  submitted_by: string;
}

/** The stored history as the model takes it. */
function toHistory(messages: readonly { role?: unknown; content?: unknown }[]): ChatMessage[] {
  return messages.map((m) => ({
    role: m.role === 'assistant' ? 'assistant' : 'user',
    content: String(m.content),
  }));
}

function unknownSession(): HttpError {
  // One answer for "never issued" and "expired": a client cannot tell which ids ever existed.
  return new HttpError(404, 'session_not_found', 'unknown or expired session');
}

/** HTTP error with a code for the JSON body. */
class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** Builds the service from a validated configuration. Connects lazily; nothing listens yet. */
export async function createAgentService(
  config: AgentServiceConfig,
  options: CreateAgentServiceOptions = {},
): Promise<AgentService> {
  const redis = redisInput(config);
  // Every Redis user fails fast (503) instead of waiting out the library defaults.
  const connection = { connectTimeout: config.redisTimeout, commandTimeout: config.redisTimeout };
  const metrics = new Metrics({
    requestsMetric: SERVICE_METRICS.requests,
    errorsMetric: SERVICE_METRICS.errors,
    latencyMetric: SERVICE_METRICS.latency,
    help: {
      [SERVICE_METRICS.requests]: 'HTTP requests by method, route and status',
      [SERVICE_METRICS.errors]: 'HTTP requests answered 5xx, by method and route',
      [SERVICE_METRICS.latency]: 'HTTP request duration in seconds, by method, route and status',
      [SERVICE_METRICS.queueDepth]: 'Tasks waiting for a worker (shared queue)',
    },
  });
  // process_cpu_seconds_total, process_resident_memory_bytes, ...: what `azscale advise` reads.
  collectDefaultMetrics({ register: metrics.registry });

  let pool: HttpPool | undefined;
  let model: ChatModel;
  if (options.model) model = options.model;
  else if (config.llmBaseUrl) {
    pool = createHttpPool({ maxConnections: 100 });
    model = new OpenAICompatibleModel({
      baseUrl: config.llmBaseUrl,
      apiKey: config.llmApiKey,
      timeout: config.llmTimeout,
      pool,
    });
  } else {
    model = new LocalModel({
      latencyMs: config.llmLatencyMs,
      failureRate: config.llmFailureRate,
      seed: config.llmSeed,
    });
  }

  const sessions = new DistributedSessionManager({
    ...(redis ? { redis } : {}),
    ...connection,
    ttl: config.sessionTtl,
    maxMessages: config.maxHistory,
    metrics,
  });
  const cache = new DistributedCache({
    ...(redis ? { redis } : {}),
    ttl: 3600,
    local: { max: 10_000 },
    metrics,
  });
  const limiter = new ConcurrencyLimiter({
    concurrency: config.preset.llm_concurrent_requests,
    ...(redis ? { redis, key: `llm:${config.llmModel}`, connection } : {}),
    maxQueue: config.llmMaxQueue,
    queueTimeout: config.llmQueueTimeout,
    metrics,
  });
  const breaker = new CircuitBreaker({
    name: 'llm',
    failureThreshold: config.breakerFailures,
    recoveryTimeout: config.breakerRecovery,
    // Only provider trouble opens the circuit: a full limiter or a bad request does not.
    isFailure: (e) =>
      e instanceof LLMCallError
        ? e.isProviderFailure
        : !isLimitExceededError(e) && !isValidationError(e),
    ...(redis ? { redis, connection } : {}),
    metrics,
  });
  const optimizer = new CostOptimizer({
    hourlyBudget: config.hourlyBudget,
    ...(redis ? { redis } : {}),
    name: 'agent-service',
    ...(redis ? { connection } : {}),
    metrics,
  });
  let priced = true;
  try {
    optimizer.estimateLLMCost({ model: config.llmModel, inputTokens: 1, outputTokens: 1 });
  } catch {
    // An unpriced model still works; its spend is just not tracked (logged once at start).
    priced = false;
  }
  const advisor = new ScalingAdvisor({ metrics });
  // maxQueued bounds the queue on every backend (LimitExceededError at the bound: a 429).
  const queue = new TaskQueue({
    name: QUEUE_NAME,
    ...(redis ? { redis, redisOptions: connection } : {}),
    maxQueued: config.maxQueued,
    metrics,
    metricsInterval: 5,
  });
  const db = config.databaseUrl
    ? new DatabaseRouter({
        primary: config.databaseUrl,
        replicas: config.databaseReplicaUrls,
        readYourWrites: { mode: 'lsn' },
        metrics,
      })
    : undefined;
  const ping = redis ? new RedisConnection(redis, connection) : undefined;
  const clientLimits = new ClientLimits(
    { chat: config.chatRateLimit, task: config.taskRateLimit },
    ping,
  );

  const stats: ServiceStats = {
    chats: 0,
    llmCalls: 0,
    cacheHits: 0,
    cacheMisses: 0,
    breakerTrips: 0,
    tasksSubmitted: 0,
    tasksCompleted: 0,
    tasksFailed: 0,
    rejectedByLimiter: 0,
    rejectedByBreaker: 0,
    rejectedByRateLimit: 0,
    rejectedByQueue: 0,
  };
  const cacheHit = metrics.counter(SERVICE_METRICS.llmCache, { result: 'hit' });
  const cacheMiss = metrics.counter(SERVICE_METRICS.llmCache, { result: 'miss' });
  const trips = metrics.counter(SERVICE_METRICS.breakerTrips);
  breaker.onOpen(() => {
    stats.breakerTrips++;
    trips.inc();
  });
  // The queue itself publishes worker_queue_depth{queue} (and the other depth gauges) every
  // metricsInterval seconds; /api/scaling reads the depth fresh.
  let lastDepth = 0;

  /**
   * One LLM pipeline for both chat routes and the agent task: the cache first; on a miss the
   * hour's budget (BudgetExceededError once spent; cache hits are still served), a slot of the
   * concurrency limiter (fleet-wide with Redis), the circuit breaker, the model with a timeout;
   * spend recorded from the reported usage (an unpriced model is reported once at start).
   */
  const pipeline = new LLMPipeline({
    cache,
    optimizer,
    limiter,
    breaker,
    timeout: config.llmTimeout,
    metrics,
  });

  /** The configured model as a pipeline call. */
  const chatModelCall = (request: ChatRequest): LLMModelCall => ({
    model: request.model,
    provider: model.kind,
    async generate(signal) {
      stats.llmCalls++;
      const c = await model.complete(request, signal);
      return {
        v: 1,
        text: c.content,
        toolCalls: [],
        finishReason: 'stop',
        usage: { inputTokens: c.inputTokens, outputTokens: c.outputTokens },
        model: c.model,
        createdAt: Date.now(),
      };
    },
  });

  function countOutcome(source: string): boolean {
    const cached = source === 'cache' || source === 'peer';
    if (cached) {
      stats.cacheHits++;
      cacheHit.inc();
    } else {
      stats.cacheMisses++;
      cacheMiss.inc();
    }
    return cached;
  }

  function countRefusal(e: unknown): void {
    if (isLimitExceededError(e)) stats.rejectedByLimiter++;
    if (isCircuitOpenError(e)) stats.rejectedByBreaker++;
  }

  /** One LLM call through the pipeline. */
  async function llm(
    messages: ChatMessage[],
  ): Promise<{ completion: ChatCompletion; cached: boolean }> {
    const request: ChatRequest = {
      model: config.llmModel,
      messages,
      temperature: config.llmTemperature,
    };
    try {
      const r = await pipeline.generate({
        request,
        temperature: request.temperature,
        models: [chatModelCall(request)],
      });
      const cached = countOutcome(r.source);
      return {
        completion: {
          content: r.entry.text,
          model: r.entry.model ?? config.llmModel,
          inputTokens: r.entry.usage?.inputTokens ?? 0,
          outputTokens: r.entry.usage?.outputTokens ?? 0,
        },
        cached,
      };
    } catch (e) {
      countRefusal(e);
      throw e;
    }
  }

  // The AI SDK path of /api/chat/stream, made on first use: the configured endpoint
  // (LLM_BASE_URL), or the service's own model served over OpenAI-compatible HTTP on loopback.
  let standin: StandinServer | undefined;
  let aiModel: Promise<{ sdk: AISdk; model: ReturnType<AISdk['wrapLanguageModel']> }> | undefined;
  const streamModel = () =>
    (aiModel ??= (async () => {
      const sdk = await loadAISdk();
      let baseURL = config.llmBaseUrl;
      if (options.model || !baseURL) {
        standin = await serveChatModel({
          kind: model.kind,
          complete: (r, signal) => {
            stats.llmCalls++;
            return model.complete(r, signal);
          },
        });
        baseURL = standin.baseURL;
      }
      const middleware = azscaleMiddleware({
        pipeline,
        specificationVersion: (sdk.major === 7 ? 'v4' : 'v3') as 'v4',
      });
      const wrapped = sdk.wrapLanguageModel({
        model: sdk.provider(baseURL, config.llmApiKey)(config.llmModel),
        middleware,
      });
      return { sdk, model: wrapped };
    })());

  /**
   * The agent task, a flow's parent (agent-flow.ts): its `plan` and `tool` sub-tasks already ran
   * (in parallel, on any worker); it makes the LLM call and joins their results. Progress is
   * visible in GET /api/task/:id and streamed by GET /api/task/:id/events.
   */
  async function runTask(data: TaskData, ctx: TaskContext) {
    await ctx.progress(10);
    const subTasks = await ctx.childResults<{ step: string }>();
    const { completion, cached } = await llm([SYSTEM_PROMPT, { role: 'user', content: data.task }]);
    await ctx.progress(90);
    return {
      answer: completion.content,
      cached,
      steps: ['plan', 'llm', 'tool'],
      sub_tasks: Object.fromEntries(Object.entries(subTasks).map(([id, r]) => [id, r.step])),
      submitted_by: data.submitted_by,
      worker: config.instanceId,
    };
  }

  const worker =
    config.workers > 0
      ? new BackgroundWorker<TaskData>({
          queue,
          handler: runTask,
          handlers: {
            [AGENT_STEP]: agentStepHandler(config.taskLatencyMs / 2, config.instanceId),
            // The cache warm-up schedule's task (warmup.ts).
            [WARMUP_TASK]: () =>
              runWarmup(config.warmupPrompts, (p) =>
                llm([SYSTEM_PROMPT, { role: 'user', content: p }]),
              ),
          },
          numWorkers: config.workers,
          timeout: config.taskTimeout,
          visibilityTimeout: 30,
          attempts: 3,
          backoff: { type: 'exponential', delay: 1, jitter: true },
        })
      : undefined;
  worker?.on('completed', () => {
    stats.tasksCompleted++;
  });
  worker?.on('failed', () => {
    stats.tasksFailed++;
  });

  const health = new HealthRegistry({ metrics, timeout: 1 });
  // Set by close() at once; azscalePlugin's own flag (and its failing readiness check) follows
  // when Fastify starts closing.
  let closeCalled = false;
  const isDraining = () => closeCalled || app.azscale.draining;
  // /readyz is public: a failing check says what failed, never where the server is.
  const publicCheck = (fn: () => Promise<unknown>) => async () => {
    try {
      await fn();
    } catch (e) {
      throw new Error(redact(e instanceof Error ? e.message : String(e)));
    }
  };
  if (ping)
    health.register(
      'redis',
      publicCheck(() => ping.run('ping', (c) => c.ping())),
    );
  if (db)
    health.register(
      'database',
      publicCheck(() => db.getWritePool().query('SELECT 1')),
    );
  if (worker) health.register('worker', () => isDraining() || worker.isRunning);

  const app = Fastify({
    bodyLimit: config.bodyLimitBytes,
    logger: config.logLevel === 'silent' ? false : { level: config.logLevel },
    // One log line per request only when asked for (LOG_LEVEL=debug or trace); errors always.
    logController: new LogController({
      disableRequestLogging: !['debug', 'trace'].includes(config.logLevel),
    }),
    // A request id per request in the logs; the instance id in every answer (see onSend).
    requestIdHeader: 'x-request-id',
    return503OnClosing: true,
    // A number is not a message: no silent type coercion of request bodies.
    ajv: { customOptions: { coerceTypes: false } },
    // The client address the rate limits key on: X-Forwarded-For only behind a trusted proxy.
    trustProxy: config.trustProxy,
    forceCloseConnections: 'idle',
  });

  // JSON only: a text/plain body is a 415, not a string that fails validation later.
  app.removeContentTypeParser('text/plain');
  if (!priced) {
    app.log.warn(
      `LLM_MODEL ${config.llmModel} has no price in the CostOptimizer table; spend is not tracked`,
    );
  }
  // RED metrics, /metrics, /healthz /readyz /startupz, readiness failing and Connection: close
  // while closing, and the drain: in onClose (after in-flight requests) the worker stops
  // (running tasks finish within shutdownTimeout) and every primitive closes.
  await app.register(azscalePlugin, {
    metrics,
    health,
    sessions,
    cache,
    queue,
    worker,
    limiter,
    breakers: { llm: breaker },
    optimizer,
    db,
    shutdownTimeout: config.shutdownTimeout,
    closeables: [ping, pool, model.close ? () => model.close?.() : undefined].filter(
      (c): c is NonNullable<typeof c> => c !== undefined,
    ),
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-instance-id', config.instanceId);
  });

  // The operations dashboard at /dashboard/: read-only unless DASHBOARD_TOKEN is set (actions
  // then need it as a bearer token). Served before body parsing, so its actions read their body.
  const dashboardToken = process.env.DASHBOARD_TOKEN || undefined;
  const dashboard = createDashboard({
    title: `agent-service ${config.instanceId}`,
    queues: [queue],
    breakers: { llm: breaker },
    limiters: { llm: limiter },
    optimizer,
    advisor,
    metrics,
    readOnly: dashboardToken === undefined,
    ...(dashboardToken ? { auth: dashboardToken } : {}),
  });
  app.addHook('onRequest', (req, reply, done) => {
    if (!dashboard.matches(req.raw)) return done();
    reply.hijack();
    dashboard(req.raw, reply.raw);
  });
  app.addHook('onClose', async () => {
    await dashboard.close();
  });

  const sendError = (reply: FastifyReply, e: HttpError) => {
    if (e.retryAfter !== undefined)
      reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfter))));
    return reply.code(e.statusCode).send({ error: { code: e.code, message: redact(e.message) } });
  };

  /** Every error becomes a JSON body with a status that says whose fault it was. */
  function classify(e: unknown): HttpError {
    const fe = e as Partial<FastifyError>;
    if (fe.validation)
      return new HttpError(400, 'invalid_request', fe.message ?? 'invalid request');
    switch (fe.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new HttpError(400, 'malformed_json', fe.message ?? 'malformed JSON');
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new HttpError(
          413,
          'body_too_large',
          `request body is over ${config.bodyLimitBytes} bytes`,
        );
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new HttpError(415, 'unsupported_media_type', 'send application/json');
    }
    if (e instanceof SyntaxError) return new HttpError(400, 'malformed_json', e.message);
    if (e instanceof HttpError) return e;
    if (isValidationError(e)) return new HttpError(400, 'invalid_request', e.message);
    if (isBudgetExceededError(e)) {
      const next = optimizer.hourStartMs() + 3_600_000;
      return new HttpError(429, 'budget_exceeded', e.message, (next - Date.now()) / 1000);
    }
    if (isLimitExceededError(e)) {
      return new HttpError(
        429,
        'llm_busy',
        'too many LLM calls in flight, retry shortly',
        e.retryAfter ?? 1,
      );
    }
    if (isCircuitOpenError(e)) {
      // The breaker knows when it lets a trial call through (with Redis: fleet-wide).
      const ra = e.context.retryAfter;
      return new HttpError(
        503,
        'llm_unavailable',
        'the LLM provider is failing; circuit open',
        typeof ra === 'number' && ra > 0 ? ra : config.breakerRecovery,
      );
    }
    if (isTimeoutError(e) && typeof e.context.model === 'string') {
      return new HttpError(504, 'llm_timeout', e.message);
    }
    if (isBackendUnavailableError(e) || isTimeoutError(e)) {
      return new HttpError(
        503,
        'backend_unavailable',
        'a backend (Redis/PostgreSQL) is unavailable',
        5,
      );
    }
    if (isClosedError(e))
      return new HttpError(503, 'shutting_down', 'this instance is shutting down', 1);
    if (e instanceof LLMCallError) {
      if (e.status === 429)
        return new HttpError(503, 'llm_rate_limited', e.message, e.retryAfter ?? 5);
      return new HttpError(502, 'llm_error', e.message, e.retryAfter);
    }
    // A provider error from the AI SDK path (APICallError carries the provider's status).
    const providerStatus = statusOf(e);
    if (providerStatus === 429)
      return new HttpError(503, 'llm_rate_limited', String(fe.message), 5);
    if (providerStatus !== undefined && providerStatus >= 500) {
      return new HttpError(502, 'llm_error', String(fe.message));
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return new HttpError(
        fe.statusCode,
        (fe.code ?? 'bad_request').toLowerCase(),
        fe.message ?? 'bad request',
      );
    }
    return new HttpError(500, 'internal_error', 'internal error');
  }

  app.setErrorHandler((error, req, reply) => {
    const e = classify(error);
    if (e.statusCode >= 500) req.log.error({ err: error }, 'request failed');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(
      reply,
      new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`),
    ),
  );

  /**
   * The session rule of both chat routes: ids are issued here (128 random bits), never chosen
   * by the client. An issued id has a stored conversation (created by the turn that issued it);
   * anything else (a guessed or made-up id, or an expired session) is a 404, nothing written.
   */
  async function openConversation(
    requested: string | undefined,
  ): Promise<{ sessionId: string; history: ChatMessage[] }> {
    if (requested === undefined) return { sessionId: newSessionId(), history: [] };
    const history = toHistory((await sessions.getSession(requested)).messages);
    if (history.length === 0) throw unknownSession();
    return { sessionId: requested, history };
  }

  /** 429 with Retry-After once `client` spent its budget on `route`. */
  async function rateLimit(route: 'chat' | 'task', client: string): Promise<void> {
    const verdict = await clientLimits.take(route, client);
    if (verdict.allowed) return;
    stats.rejectedByRateLimit++;
    throw new HttpError(
      429,
      'rate_limited',
      `too many requests from this client to ${route === 'chat' ? ROUTES.chat : ROUTES.agentAsync}, retry later`,
      verdict.retryAfter,
    );
  }

  app.get('/', async () => ({
    service: 'azscale agent-service',
    instance: config.instanceId,
    mode: redis ? (config.redisClusterNodes ? 'redis-cluster' : 'redis') : 'embedded',
    llm: model.kind,
    endpoints: Object.values(ROUTES),
  }));

  app.post<{ Body: ChatBody }>(
    ROUTES.chat,
    {
      schema: {
        body: {
          type: 'object',
          required: ['message'],
          additionalProperties: false,
          properties: {
            session_id: { type: 'string', pattern: ID_PATTERN },
            message: { type: 'string', minLength: 1, maxLength: config.maxMessageChars },
          },
        },
      },
    },
    async (req) => {
      await rateLimit('chat', req.ip);
      stats.chats++;
      const user: ChatMessage = { role: 'user', content: req.body.message };
      const { sessionId, history } = await openConversation(req.body.session_id);
      const { completion, cached } = await llm([SYSTEM_PROMPT, ...history, user]);
      // The user's turn and the reply land together (no other turn between them) and only
      // once the reply exists; a conversation over sessionMaxBytes drops its oldest turns.
      const length = await sessions.appendMessages(
        sessionId,
        [user, { role: 'assistant', content: completion.content }],
        { maxBytes: config.sessionMaxBytes },
      );
      if (db) {
        await db.write(
          'INSERT INTO agent_conversation_log (session_id, role, content, instance) VALUES ($1, $2, $3, $6), ($1, $4, $5, $6)',
          [sessionId, 'user', req.body.message, 'assistant', completion.content, config.instanceId],
        );
      }
      return { session_id: sessionId, reply: completion.content, cached, messages: length };
    },
  );

  // Server-sent events: `delta` events with the text as it comes, then `done` (or `error` when
  // the answer breaks off after it started). A refusal before the first text (budget, limiter,
  // open breaker) is an ordinary JSON error response with its status.
  app.post<{ Body: ChatBody }>(
    ROUTES.chatStream,
    {
      schema: {
        body: {
          type: 'object',
          required: ['message'],
          additionalProperties: false,
          properties: {
            session_id: { type: 'string', pattern: ID_PATTERN },
            message: { type: 'string', minLength: 1, maxLength: config.maxMessageChars },
          },
        },
      },
    },
    async (req, reply) => {
      await rateLimit('chat', req.ip);
      stats.chats++;
      const user: ChatMessage = { role: 'user', content: req.body.message };
      const { sessionId, history } = await openConversation(req.body.session_id);
      history.push(user);
      const { sdk, model: streaming } = await streamModel();
      const abort = new AbortController();
      reply.raw.on('close', () => abort.abort());
      const result = sdk.streamText({
        model: streaming,
        ...sdk.system(SYSTEM_PROMPT.content),
        messages: history,
        temperature: config.llmTemperature,
        maxRetries: 0,
        abortSignal: abort.signal,
        onError: () => {},
      });
      const parts = result.fullStream[Symbol.asyncIterator]();
      let next = await parts.next();
      while (!next.done && next.value.type !== 'text-delta' && next.value.type !== 'finish') {
        if (next.value.type === 'error') {
          countRefusal(next.value.error);
          throw next.value.error;
        }
        next = await parts.next();
      }
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        ...(isDraining() ? { connection: 'close' } : {}),
      });
      const send = (event: string, data: unknown) =>
        out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let text = '';
      for (; !next.done; next = await parts.next()) {
        const p = next.value;
        if (p.type === 'text-delta') {
          text += p.text;
          send('delta', { text: p.text });
        } else if (p.type === 'error') {
          send('error', {
            error: classify(p.error).code,
            message: redact(String((p.error as Error)?.message ?? p.error)),
          });
          out.end();
          return;
        }
      }
      const meta = (await result.providerMetadata)?.azscale as { source?: string } | undefined;
      const cached = countOutcome(meta?.source ?? 'model');
      // As on /api/chat: the user's turn and the reply land together, trimmed by bytes.
      const length = await sessions.appendMessages(
        sessionId,
        [user, { role: 'assistant', content: text }],
        { maxBytes: config.sessionMaxBytes },
      );
      send('done', { session_id: sessionId, cached, messages: length });
      out.end();
    },
  );

  app.get<{ Params: { id: string } }>(
    ROUTES.session,
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: ID_PATTERN } } },
      },
    },
    async (req) => {
      const s = await sessions.getSession(req.params.id);
      if (s.messages.length === 0) throw unknownSession();
      return { session_id: req.params.id, messages: s.messages };
    },
  );

  app.post<{ Body: TaskBody }>(
    ROUTES.agentAsync,
    {
      schema: {
        body: {
          type: 'object',
          required: ['task'],
          additionalProperties: false,
          properties: { task: { type: 'string', minLength: 1, maxLength: config.maxMessageChars } },
        },
      },
    },
    async (req, reply) => {
      if (isDraining())
        throw new HttpError(503, 'shutting_down', 'this instance is shutting down', 1);
      await rateLimit('task', req.ip);
      let taskId: string;
      try {
        // A flow: the agent task runs once its sub-tasks completed (agent-flow.ts).
        ({ id: taskId } = await queue.submitFlow(
          agentFlow({ task: req.body.task, submitted_by: config.instanceId }),
        ));
      } catch (e) {
        if (!isLimitExceededError(e)) throw e;
        stats.rejectedByQueue++;
        throw new HttpError(
          429,
          'queue_full',
          'too many tasks are waiting, retry later',
          e.retryAfter ?? 5,
        );
      }
      stats.tasksSubmitted++;
      return reply.code(202).send({ task_id: taskId, status: 'queued' });
    },
  );

  app.get<{ Params: { id: string } }>(
    ROUTES.task,
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' } },
        },
      },
    },
    async (req) => {
      const t = await queue.getTask(req.params.id);
      if (!t) throw new HttpError(404, 'task_not_found', `no task ${req.params.id}`);
      return {
        task_id: t.id,
        status: t.status,
        ...(t.result !== undefined ? { result: t.result } : {}),
        // Task errors are library messages written for operators; a client sees them redacted.
        ...(t.error !== undefined ? { error: redact(t.error) } : {}),
        ...(t.progress !== undefined ? { progress: t.progress } : {}),
        attempts: t.attempts,
        created_at: new Date(t.createdAt).toISOString(),
        updated_at: new Date(t.updatedAt).toISOString(),
      };
    },
  );

  // Server-sent events of one task (task-events.ts): its state now, then progress and the outcome
  // as they happen on whichever instance runs it. Streams still open at shutdown are ended.
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...openStreams]) end();
  });
  app.get<{ Params: { id: string } }>(
    ROUTES.taskEvents,
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' } },
        },
      },
    },
    async (req, reply) => {
      const found = await streamTaskEvents(
        queue,
        req.params.id,
        () => {
          reply.hijack();
          return reply.raw;
        },
        openStreams,
      );
      if (!found) throw new HttpError(404, 'task_not_found', `no task ${req.params.id}`);
    },
  );

  app.get(ROUTES.scaling, async () => {
    const qs = await queue.stats().catch(() => undefined);
    if (qs) lastDepth = qs.queued + qs.delayed;
    const snap = metrics.snapshot();
    const assessment: ScalingAssessment = advisor.assess({
      ...(snap.p95LatencyMs !== undefined ? { p95LatencyMs: snap.p95LatencyMs } : {}),
      cpu: snap.cpu,
      memory: snap.memory,
      errorRate: snap.errorRate,
      queueDepth: lastDepth,
    });
    const [spent, byCategory] = await Promise.all([
      optimizer.currentSpend(),
      optimizer.spendByCategory(),
    ]);
    return {
      instance: config.instanceId,
      region: config.region,
      preset: config.scale,
      assessment,
      snapshot: {
        p95_latency_ms: snap.p95LatencyMs ?? null,
        requests_per_second: snap.requestRate,
        error_rate: snap.errorRate,
        cpu: snap.cpu,
        memory: snap.memory,
        queue_depth: lastDepth,
      },
      spend: {
        hour_start: new Date(optimizer.hourStartMs()).toISOString(),
        current: spent,
        budget: config.hourlyBudget,
        remaining: Math.max(0, config.hourlyBudget - spent),
        by_category: byCategory,
      },
      llm: {
        concurrency: config.preset.llm_concurrent_requests,
        active: limiter.activeCount,
        waiting: limiter.pendingCount,
        breaker: breaker.state,
      },
    };
  });

  let closing: Promise<void> | undefined;
  const service: AgentService = {
    app,
    config,
    model,
    metrics,
    sessions,
    cache,
    queue,
    worker,
    limiter,
    clientLimits,
    breaker,
    optimizer,
    advisor,
    db,
    stats,
    get draining() {
      return isDraining();
    },
    async listen() {
      if (db) {
        await db.write(
          `CREATE TABLE IF NOT EXISTS agent_conversation_log (
             id bigserial PRIMARY KEY, session_id text NOT NULL, role text NOT NULL,
             content text NOT NULL, instance text, created_at timestamptz NOT NULL DEFAULT now())`,
        );
      }
      await worker?.start();
      await registerWarmup(queue, config);
      return app.listen({ port: config.port, host: config.host });
    },
    close() {
      closeCalled = true;
      // azscalePlugin drains: in-flight requests finish, then the worker, then the backends;
      // the per-client rate limiters, the LLM pipeline and the local stand-in provider are this
      // service's own and close after it.
      closing ??= app
        .close()
        .finally(() =>
          Promise.allSettled([clientLimits.close(), pipeline.close(), standin?.close()]),
        )
        .then(() => undefined);
      return closing;
    },
  };
  return service;
}
