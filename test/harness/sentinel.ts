/**
 * A Redis Sentinel group started on demand by a test file: one primary, N replicas and M
 * `redis-sentinel` processes, all on 127.0.0.1 with free ports and fast failure detection
 * (`down-after-milliseconds` 1000), so a killed primary is replaced within seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type ServerHandle, freePort, startRedisServer } from './servers.js';

/** Options of {@link startSentinelGroup}. */
export interface SentinelGroupOptions {
  /** Replicas of the primary. @default 2 */
  replicas?: number;
  /** Sentinel processes. @default 3 */
  sentinels?: number;
  /** Sentinels that must agree the primary is down. @default majority of `sentinels` */
  quorum?: number;
  /** The primary's name in the sentinels' configuration. @default 'azsmaster' */
  name?: string;
  /** `requirepass` (and `masterauth`) of the Redis servers. */
  password?: string;
  /** `requirepass` of the sentinels. */
  sentinelPassword?: string;
}

/** A running Sentinel group. */
export interface SentinelGroup {
  /** The primary's name. */
  name: string;
  /** Sentinel addresses, for `redis: { sentinels, name }`. */
  sentinels: { host: string; port: number }[];
  /** The Redis servers, primary first (as started; after a failover the roles differ). */
  servers: ServerHandle[];
  /** Port of the primary as the sentinels see it now. */
  primaryPort(): Promise<number>;
  /**
   * Waits until every sentinel names a primary other than `oldPort` and that server answers
   * `ROLE` as master. Resolves its port.
   */
  waitForNewPrimary(oldPort: number, timeoutMs?: number): Promise<number>;
  /** The server handle listening on `port`. */
  server(port: number): ServerHandle;
  /** Stops every process and removes the data folders. */
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of started) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

function which(bin: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/bin', '/usr/local/bin']) {
    const p = join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  throw new Error(
    `${bin} is not installed: the Sentinel tests need it ('apt-get install -y redis-sentinel').`,
  );
}

function tcpReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.connect(port, '127.0.0.1');
  });
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last}` : ''}`);
}

/** A short-lived plain connection (no retries) to a sentinel or server, closed after `fn`. */
async function withClient<T>(
  port: number,
  password: string | undefined,
  fn: (c: Redis) => Promise<T>,
): Promise<T> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    ...(password ? { password } : {}),
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
    commandTimeout: 2000,
    enableOfflineQueue: false,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await fn(c);
  } finally {
    c.disconnect();
  }
}

/** Starts a primary, its replicas and the sentinels, and waits until the sentinels see them all. */
export async function startSentinelGroup(
  options: SentinelGroupOptions = {},
): Promise<SentinelGroup> {
  const replicas = options.replicas ?? 2;
  const count = options.sentinels ?? 3;
  const quorum = options.quorum ?? Math.floor(count / 2) + 1;
  const name = options.name ?? 'azsmaster';
  const pw = options.password;
  const auth = pw ? ['--masterauth', pw] : [];
  const servers: ServerHandle[] = [];
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    const primary = await startRedisServer({ ...(pw ? { password: pw } : {}), args: auth });
    servers.push(primary);
    for (let i = 0; i < replicas; i++) {
      servers.push(
        await startRedisServer({
          ...(pw ? { password: pw } : {}),
          args: [...auth, '--replicaof', '127.0.0.1', String(primary.port)],
        }),
      );
    }
    await until(
      'replicas to sync',
      () =>
        withClient(primary.port, pw, async (c) => {
          const info = await c.info('replication');
          const online = info.match(/state=online/g)?.length ?? 0;
          return online >= replicas;
        }),
      30_000,
    );
    const bin = which('redis-sentinel');
    const sentinels: { host: string; port: number }[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), `azs-sentinel-${port}-`));
      dirs.push(dir);
      const conf = join(dir, 'sentinel.conf');
      const lines = [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        'loglevel warning',
        `sentinel monitor ${name} 127.0.0.1 ${primary.port} ${quorum}`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 2`,
      ];
      if (pw) lines.push(`sentinel auth-pass ${name} ${pw}`);
      if (options.sentinelPassword) {
        lines.push(`requirepass ${options.sentinelPassword}`);
        lines.push(`sentinel sentinel-pass ${options.sentinelPassword}`);
      }
      writeFileSync(conf, `${lines.join('\n')}\n`);
      const child = spawn(bin, [conf], { stdio: ['ignore', 'ignore', 'ignore'] });
      children.push(child);
      started.add(child);
      child.once('exit', () => started.delete(child));
      await until(`redis-sentinel on port ${port}`, () => tcpReady(port), 20_000);
      sentinels.push({ host: '127.0.0.1', port });
    }
    // Each sentinel must know the replicas (from the primary's INFO) and, with several, each
    // other (hello messages every 2 s): before that a failover cannot be agreed.
    for (const s of sentinels) {
      await until(
        `sentinel ${s.port} to see the group`,
        () =>
          withClient(s.port, options.sentinelPassword, async (c) => {
            const m = (await c.call('SENTINEL', 'MASTER', name)) as string[];
            const field = (k: string) => Number(m[m.indexOf(k) + 1]);
            return field('num-slaves') >= replicas && field('num-other-sentinels') >= count - 1;
          }),
        30_000,
      );
    }
    const primaryPort = async (): Promise<number> => {
      for (const s of sentinels) {
        try {
          const addr = await withClient(
            s.port,
            options.sentinelPassword,
            (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name) as Promise<string[]>,
          );
          return Number(addr[1]);
        } catch {
          // Ask the next one.
        }
      }
      throw new Error('no sentinel answered');
    };
    return {
      name,
      sentinels,
      servers,
      primaryPort,
      async waitForNewPrimary(oldPort, timeoutMs = 30_000) {
        return until(
          'a new primary',
          async () => {
            const ports = await Promise.all(
              sentinels.map((s) =>
                withClient(s.port, options.sentinelPassword, async (c) => {
                  const a = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[];
                  return Number(a[1]);
                }),
              ),
            );
            const port = ports[0] as number;
            if (port === oldPort || ports.some((p) => p !== port)) return undefined;
            const role = await withClient(port, pw, (c) => c.call('ROLE') as Promise<unknown[]>);
            return role[0] === 'master' ? port : undefined;
          },
          timeoutMs,
        );
      },
      server(port) {
        const s = servers.find((x) => x.port === port);
        if (!s) throw new Error(`no server on port ${port}`);
        return s;
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
