/**
 * `npm start`: the agent service on PORT (default 3000). Embedded (no Redis, no PostgreSQL) unless
 * REDIS_URL / REDIS_CLUSTER_NODES / DATABASE_URL are set. SIGTERM/SIGINT drain and exit 0.
 */
import { createAgentService } from './app.js';
import { ConfigError, loadConfig } from './config.js';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`agent-service: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const service = await createAgentService(config);
  let url: string;
  try {
    url = await service.listen();
  } catch (e) {
    process.stderr.write(`agent-service: could not start: ${(e as Error).message}\n`);
    await service.close().catch(() => {});
    process.exit(1);
  }
  const mode = config.redisClusterNodes
    ? 'Redis Cluster'
    : config.redisUrl
      ? 'Redis'
      : 'embedded (in memory)';
  // One machine-readable line first (tests and scripts wait for it), then the human summary.
  process.stdout.write(`listening ${url}\n`);
  if (config.logLevel !== 'silent') {
    process.stdout.write(
      [
        '',
        `azscale agent-service ${config.instanceId}`,
        `  state:   ${mode}${config.databaseUrl ? ' + PostgreSQL conversation log' : ''}`,
        `  llm:     ${service.model.kind} (${config.llmModel}), ${config.preset.llm_concurrent_requests} concurrent (preset ${config.scale})`,
        `  worker:  ${config.workers > 0 ? `${config.workers} task slots` : 'off (API only)'}`,
        '',
        'try:',
        `  curl -s ${url}/api/chat -H 'content-type: application/json' -d '{"message":"hello"}'`,
        `  curl -s ${url}/api/agent/async -H 'content-type: application/json' -d '{"task":"summarise the news"}'`,
        `  curl -s ${url}/api/task/<task_id>`,
        `  curl -s ${url}/api/scaling`,
        `  curl -s ${url}/metrics`,
        '',
        `dashboard: ${url}/dashboard/`,
        '',
      ].join('\n'),
    );
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    // A hard deadline, in case something refuses to drain.
    const deadline = setTimeout(
      () => {
        process.stderr.write('agent-service: shutdown timed out\n');
        process.exit(1);
      },
      (config.shutdownTimeout + 10) * 1000,
    );
    deadline.unref();
    service.close().then(
      () => {
        if (config.logLevel !== 'silent') process.stdout.write(`stopped (${signal})\n`);
        process.exit(0);
      },
      (e: unknown) => {
        process.stderr.write(`agent-service: shutdown error: ${(e as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  process.stderr.write(
    `agent-service: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exit(1);
});
