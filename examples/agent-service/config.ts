/**
 * The service's configuration, read from the environment and validated once at start. Every
 * problem is collected and reported together, naming the variable, what it expects and what it
 * got, so a bad deployment fails at boot with one clear message instead of at the first request.
 */
import { hostname } from 'node:os';
import { getConfigForScale, type ResourcePreset } from '../../src/scaling/index.js';

/** Everything the service reads from the environment. Durations in seconds unless `Ms`. */
export interface AgentServiceConfig {
  /** `PORT`: TCP port. 0 picks a free one. @default 3000 */
  port: number;
  /** `HOST`: interface to bind. @default '127.0.0.1' (use 0.0.0.0 in a container) */
  host: string;
  /** `INSTANCE_ID`: shown in the `x-instance-id` header and in task results. @default host-pid */
  instanceId: string;
  /** `REGION`: label only. @default 'local' */
  region: string;
  /** `SCALE`: the seed's preset (limiter size, worker count). @default 'medium' */
  scale: string;
  /** The preset `SCALE` names. */
  preset: ResourcePreset;
  /** `WORKERS`: background worker slots in this process; 0 makes an API-only instance. @default preset.workers */
  workers: number;
  /** `REDIS_URL`: standalone Redis. Unset (and no cluster): everything runs in memory. */
  redisUrl: string | undefined;
  /** `REDIS_CLUSTER_NODES`: `host:port,host:port` seed nodes of a Redis Cluster. */
  redisClusterNodes: { host: string; port: number }[] | undefined;
  /** `REDIS_TIMEOUT`: seconds to connect and per command before a 503; keeps requests from hanging. @default 2 */
  redisTimeout: number;
  /** `DATABASE_URL`: PostgreSQL primary; the conversation log is written there when set. */
  databaseUrl: string | undefined;
  /** `DATABASE_REPLICA_URLS`: comma-separated read replicas. */
  databaseReplicaUrls: string[];
  /** `LLM_BASE_URL`: an OpenAI-compatible API (e.g. https://api.openai.com/v1). Unset: the local stand-in. */
  llmBaseUrl: string | undefined;
  /** `LLM_API_KEY`: bearer token for `LLM_BASE_URL`. */
  llmApiKey: string | undefined;
  /** `LLM_MODEL`: model name sent to the API and used for pricing. @default 'gpt-4o-mini' */
  llmModel: string;
  /** `LLM_TEMPERATURE`: 0 makes answers deterministic and cacheable. @default 0 */
  llmTemperature: number;
  /** `LLM_TIMEOUT`: seconds one LLM call may take. @default 30 */
  llmTimeout: number;
  /** `LLM_LATENCY_MS`: the stand-in's response time in milliseconds. @default 150 */
  llmLatencyMs: number;
  /** `LLM_FAILURE_RATE`: fraction 0..1 of stand-in calls that fail (seeded, reproducible). @default 0 */
  llmFailureRate: number;
  /** `LLM_SEED`: seed of the stand-in's failure sequence. @default 42 */
  llmSeed: number;
  /** `LLM_MAX_QUEUE`: callers that may wait for an LLM slot; beyond it 429. @default 100 */
  llmMaxQueue: number;
  /** `LLM_QUEUE_TIMEOUT`: seconds a caller may wait for an LLM slot. @default 10 */
  llmQueueTimeout: number;
  /** `BREAKER_FAILURES`: consecutive LLM failures that open the circuit. @default 5 (the seed's) */
  breakerFailures: number;
  /** `BREAKER_RECOVERY`: seconds the circuit stays open. @default 60 (the seed's) */
  breakerRecovery: number;
  /** `HOURLY_BUDGET`: dollars per clock hour for the CostOptimizer. @default 100 (the seed's) */
  hourlyBudget: number;
  /** `SESSION_TTL`: seconds a conversation lives after its last write. @default 3600 (the seed's) */
  sessionTtl: number;
  /** `MAX_HISTORY`: messages kept per conversation, oldest dropped first. @default 200 */
  maxHistory: number;
  /**
   * `SESSION_MAX_BYTES`: largest conversation kept, in bytes of JSON; a longer one drops its
   * oldest messages (keeping the first system message) instead of failing. At most 1048576
   * (the session size limit). @default 262144
   */
  sessionMaxBytes: number;
  /**
   * `CHAT_RATE_LIMIT`: requests per minute one client address may send to /api/chat (a burst
   * of up to a minute's budget, then a steady rate); beyond it 429 with Retry-After. 0 turns it
   * off. @default 60
   */
  chatRateLimit: number;
  /** `TASK_RATE_LIMIT`: the same for /api/agent/async. 0 turns it off. @default 30 */
  taskRateLimit: number;
  /** `MAX_QUEUED`: tasks that may wait in the queue; beyond it /api/agent/async answers 429. @default 1000 */
  maxQueued: number;
  /**
   * `TRUST_PROXY`: take the client address from X-Forwarded-For (set it behind nginx or a load
   * balancer, never when clients reach the service directly: they could pick any address).
   * `true`, `false`, or a comma-separated list of proxy addresses/CIDRs. @default false
   */
  trustProxy: boolean | string;
  /** `MAX_MESSAGE_CHARS`: longest accepted chat message or task. @default 8000 */
  maxMessageChars: number;
  /** `BODY_LIMIT_BYTES`: largest accepted request body; beyond it 413. @default 65536 */
  bodyLimitBytes: number;
  /** `TASK_LATENCY_MS`: extra work an agent task does besides its LLM call (tool steps). @default 100 */
  taskLatencyMs: number;
  /** `TASK_TIMEOUT`: seconds one agent task may run. @default 120 */
  taskTimeout: number;
  /** `SHUTDOWN_TIMEOUT`: seconds SIGTERM waits for HTTP and worker drain. @default 30 */
  shutdownTimeout: number;
  /**
   * `WARMUP_PROMPTS`: first messages to keep answered in the LLM cache, separated by `|` (at most
   * 50, each at most `MAX_MESSAGE_CHARS`). A schedule re-asks them every `WARMUP_EVERY` seconds,
   * so a new conversation starting with one is a cache hit. @default none (no schedule)
   */
  warmupPrompts: string[];
  /** `WARMUP_EVERY`: seconds between cache warm-ups (at least 0.5). @default 300 */
  warmupEvery: number;
  /** `LOG_LEVEL`: Fastify/pino level, or `silent`. @default 'info' */
  logLevel: string;
}

/** A configuration problem; `problems` lists every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads and validates the configuration. @throws ConfigError listing every problem. */
export function loadConfig(env: Env = process.env): AgentServiceConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const num = (
    name: string,
    dflt: number,
    rule: { integer?: boolean; min?: number; max?: number; positive?: boolean } = {},
  ): number => {
    const raw = str(name);
    if (raw === undefined) return dflt;
    const v = Number(raw);
    const bad =
      !Number.isFinite(v) ||
      (rule.integer && !Number.isInteger(v)) ||
      (rule.positive && v <= 0) ||
      (rule.min !== undefined && v < rule.min) ||
      (rule.max !== undefined && v > rule.max);
    if (bad) {
      const what = [
        rule.integer ? 'an integer' : 'a number',
        rule.positive ? '> 0' : '',
        rule.min !== undefined ? `>= ${rule.min}` : '',
        rule.max !== undefined ? `<= ${rule.max}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      problems.push(`${name} must be ${what}, got ${JSON.stringify(raw)}`);
      return dflt;
    }
    return v;
  };
  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) {
        problems.push(
          `${name} must be a ${protocols.join(' or ')} URL, got protocol ${u.protocol}`,
        );
      }
    } catch {
      // Never echo a URL back: it may hold a password.
      problems.push(`${name} is not a valid URL`);
    }
    return raw;
  };

  const scale = (str('SCALE') ?? 'medium').toLowerCase();
  let preset: ResourcePreset;
  try {
    preset = getConfigForScale(scale);
  } catch {
    problems.push(
      `SCALE must be one of small, medium, large, xlarge, got ${JSON.stringify(scale)}`,
    );
    preset = getConfigForScale('medium');
  }

  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);
  let redisClusterNodes: { host: string; port: number }[] | undefined;
  const nodes = str('REDIS_CLUSTER_NODES');
  if (nodes !== undefined) {
    redisClusterNodes = [];
    for (const part of nodes
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(part);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) {
        problems.push(`REDIS_CLUSTER_NODES entries must be host:port, got ${JSON.stringify(part)}`);
        continue;
      }
      redisClusterNodes.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
    }
    if (redisClusterNodes.length === 0 && !problems.some((p) => p.startsWith('REDIS_CLUSTER'))) {
      problems.push('REDIS_CLUSTER_NODES must list at least one host:port');
    }
  }
  if (redisUrl && redisClusterNodes) {
    problems.push('set either REDIS_URL or REDIS_CLUSTER_NODES, not both');
  }

  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const replicas = (str('DATABASE_REPLICA_URLS') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  replicas.forEach((r, i) => {
    try {
      const u = new URL(r);
      if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error();
    } catch {
      problems.push(`DATABASE_REPLICA_URLS entry ${i + 1} is not a postgresql:// URL`);
    }
  });
  if (replicas.length > 0 && !databaseUrl) {
    problems.push('DATABASE_REPLICA_URLS needs DATABASE_URL (the primary) as well');
  }

  const llmBaseUrl = url('LLM_BASE_URL', ['http:', 'https:']);
  const logLevel = (str('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`,
    );
  }

  const rawTrust = (str('TRUST_PROXY') ?? 'false').toLowerCase();
  const trustProxy: boolean | string =
    rawTrust === 'true' || rawTrust === '1'
      ? true
      : rawTrust === 'false' || rawTrust === '0'
        ? false
        : rawTrust;

  const maxMessageChars = num('MAX_MESSAGE_CHARS', 8000, { integer: true, min: 1 });
  const warmupPrompts = (str('WARMUP_PROMPTS') ?? '')
    .split('|')
    .map((p) => p.trim())
    .filter(Boolean);
  if (warmupPrompts.length > 50) problems.push('WARMUP_PROMPTS holds more than 50 prompts');
  if (warmupPrompts.some((p) => p.length > maxMessageChars)) {
    problems.push(`WARMUP_PROMPTS has a prompt longer than MAX_MESSAGE_CHARS (${maxMessageChars})`);
  }

  const host = str('HOST') ?? '127.0.0.1';
  const config: AgentServiceConfig = {
    port: num('PORT', 3000, { integer: true, min: 0, max: 65535 }),
    host,
    instanceId: str('INSTANCE_ID') ?? `${hostname()}-${process.pid}`,
    region: str('REGION') ?? 'local',
    scale,
    preset,
    workers: num('WORKERS', preset.workers, { integer: true, min: 0, max: 1000 }),
    redisUrl,
    redisClusterNodes,
    redisTimeout: num('REDIS_TIMEOUT', 2, { positive: true }),
    databaseUrl,
    databaseReplicaUrls: replicas,
    llmBaseUrl: llmBaseUrl?.replace(/\/+$/, ''),
    llmApiKey: str('LLM_API_KEY'),
    llmModel: str('LLM_MODEL') ?? 'gpt-4o-mini',
    llmTemperature: num('LLM_TEMPERATURE', 0, { min: 0, max: 2 }),
    llmTimeout: num('LLM_TIMEOUT', 30, { positive: true }),
    llmLatencyMs: num('LLM_LATENCY_MS', 150, { min: 0, max: 600_000 }),
    llmFailureRate: num('LLM_FAILURE_RATE', 0, { min: 0, max: 1 }),
    llmSeed: num('LLM_SEED', 42, { integer: true }),
    llmMaxQueue: num('LLM_MAX_QUEUE', 100, { integer: true, min: 0 }),
    llmQueueTimeout: num('LLM_QUEUE_TIMEOUT', 10, { positive: true }),
    breakerFailures: num('BREAKER_FAILURES', 5, { integer: true, min: 1 }),
    breakerRecovery: num('BREAKER_RECOVERY', 60, { positive: true }),
    hourlyBudget: num('HOURLY_BUDGET', 100, { positive: true }),
    sessionTtl: num('SESSION_TTL', 3600, { positive: true }),
    maxHistory: num('MAX_HISTORY', 200, { integer: true, min: 2 }),
    sessionMaxBytes: num('SESSION_MAX_BYTES', 262_144, {
      integer: true,
      min: 1024,
      max: 1_048_576,
    }),
    chatRateLimit: num('CHAT_RATE_LIMIT', 60, { min: 0, max: 1_000_000 }),
    taskRateLimit: num('TASK_RATE_LIMIT', 30, { min: 0, max: 1_000_000 }),
    maxQueued: num('MAX_QUEUED', 1000, { integer: true, min: 1, max: 10_000_000 }),
    trustProxy,
    maxMessageChars,
    bodyLimitBytes: num('BODY_LIMIT_BYTES', 65536, { integer: true, min: 1024 }),
    taskLatencyMs: num('TASK_LATENCY_MS', 100, { min: 0, max: 600_000 }),
    taskTimeout: num('TASK_TIMEOUT', 120, { positive: true }),
    shutdownTimeout: num('SHUTDOWN_TIMEOUT', 30, { positive: true }),
    warmupPrompts,
    warmupEvery: num('WARMUP_EVERY', 300, { min: 0.5, max: 86_400 }),
    logLevel,
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** The Redis input the azscale primitives take, or undefined for the embedded mode. */
export function redisInput(
  config: AgentServiceConfig,
): string | { nodes: { host: string; port: number }[] } | undefined {
  if (config.redisClusterNodes) return { nodes: config.redisClusterNodes };
  return config.redisUrl;
}
