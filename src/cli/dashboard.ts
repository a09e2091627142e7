/**
 * `azscale dashboard`: serve the operations dashboard against a running fleet's Redis.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createDashboard } from '../dashboard/index.js';

/** The environment variable holding the action token (never a flag: flags show in `ps`). */
export const DASHBOARD_TOKEN_ENV = 'AZSCALE_DASHBOARD_TOKEN';

/** Usage of `azscale dashboard`. */
export const DASHBOARD_USAGE = `usage: azscale dashboard --redis URL --queue NAME [--queue NAME ...] [--port 3001]
                         [--host 127.0.0.1] [--prefix azs:worker:] [--title TEXT]
  Serves the dashboard at http://HOST:PORT/dashboard/ (read-only). With ${DASHBOARD_TOKEN_ENV}
  set, actions (redrive, cancel, pause/resume, clean) are allowed to requests bearing it.
`;

/** A bad command line (exit code 2). */
export class DashboardUsageError extends Error {}

/** What {@link serveDashboard} parsed, for its caller. */
export interface DashboardServer {
  /** The page's URL. */
  url: string;
  /** Stops the server and closes the dashboard's Redis connections. */
  close(): Promise<void>;
}

/** Parses the arguments and starts the server; resolves once it listens. */
export async function serveDashboard(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<DashboardServer> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      redis: { type: 'string' },
      queue: { type: 'string', multiple: true },
      port: { type: 'string' },
      host: { type: 'string' },
      prefix: { type: 'string' },
      title: { type: 'string' },
    },
  });
  if (!values.redis) throw new DashboardUsageError('--redis URL is required');
  const queues = values.queue ?? [];
  if (queues.length === 0) throw new DashboardUsageError('give at least one --queue NAME');
  const port = values.port === undefined ? 3001 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new DashboardUsageError(
      `--port must be an integer in 0..65535, received "${values.port}"`,
    );
  }
  const token = env[DASHBOARD_TOKEN_ENV];
  const dash = createDashboard({
    queues,
    redis: values.redis,
    ...(values.prefix !== undefined ? { queuePrefix: values.prefix } : {}),
    ...(values.title !== undefined ? { title: values.title } : {}),
    readOnly: !token,
    ...(token ? { auth: token } : {}),
  });
  const server = createServer((req, res) => dash(req, res));
  const host = values.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (e) {
    await dash.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}${dash.basePath}/`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await dash.close();
    },
  };
}
