/**
 * Starts real servers for the integration tests on 127.0.0.1 with free ports and throwaway data
 * folders: standalone redis-server, a 3-master Redis Cluster, and a PostgreSQL 15 primary with a
 * streaming replica. Every process started here is stopped by `stop()` and, as a last resort,
 * when this process exits.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A server process we started. */
export interface ServerHandle {
  url: string;
  port: number;
  /** Graceful stop (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Sends a signal at once (default SIGKILL) and waits for exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

/** A free TCP port on 127.0.0.1 (bound and released, then handed out). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    // A Redis Cluster node also listens on port + 10000 (its bus port): keep room for it.
    if (port > 0 && port < 55000) return port;
  }
}

function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = join(dir, bin);
    if (dir && existsSync(p)) return p;
  }
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    const p = join(dir, bin);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Thrown when a server binary is missing: says which Debian package provides it. */
export class MissingServerError extends Error {}

function requireBin(bin: string, pkg: string): string {
  const p = which(bin);
  if (!p) {
    throw new MissingServerError(
      `${bin} is not installed: the integration tests need it. Install it with ` +
        `'apt-get install -y ${pkg}' (Debian package ${pkg}), or point the tests at running ` +
        'servers with REDIS_URL, REDIS_CLUSTER_NODES, PG_PRIMARY_URL and PG_REPLICA_URLS.',
    );
  }
  return p;
}

function pgBinDir(): string {
  const candidates = [
    process.env.PG_BIN,
    '/usr/lib/postgresql/15/bin',
    '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/17/bin',
  ].filter((d): d is string => !!d);
  for (const d of candidates) if (existsSync(join(d, 'postgres'))) return d;
  throw new MissingServerError(
    "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/15/bin). Install them with 'apt-get install -y postgresql-15' (Debian package postgresql-15), or set PG_PRIMARY_URL and PG_REPLICA_URLS.",
  );
}

function tcpReady(port: number, host = '127.0.0.1'): Promise<boolean> {
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
    s.connect(port, host);
  });
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function track(child: ChildProcess, name: string, logFile?: string): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (logFile) {
    const write = (d: Buffer) => {
      try {
        appendFileSync(logFile, d);
      } catch {
        // The data folder is already gone (teardown): the log line has no reader left.
      }
    };
    child.stdout?.on('data', write);
    child.stderr?.on('data', write);
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  child.on('error', (e) => {
    throw new Error(`${name} failed to start: ${e.message}`);
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited(child);
  clearTimeout(t);
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Require this password (`requirepass`). */
  password?: string;
  /** Run as a cluster node (cluster-enabled). */
  cluster?: boolean;
  /** Port to use (default: a free one). */
  port?: number;
  /** Extra redis-server arguments. */
  args?: string[];
}

/** Starts a private redis-server on 127.0.0.1 (no persistence) and waits until it answers. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<ServerHandle> {
  const bin = requireBin('redis-server', 'redis-server');
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), `azs-redis-${port}-`));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--protected-mode',
    'no',
    '--loglevel',
    'warning',
    '--maxclients',
    '2000',
  ];
  if (options.password) args.push('--requirepass', options.password);
  if (options.cluster) {
    args.push(
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--cluster-node-timeout',
      '3000',
    );
  }
  args.push(...(options.args ?? []));
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child, 'redis-server');
  await until(`redis-server on port ${port}`, () => tcpReady(port));
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : '';
  const handle: ServerHandle = {
    url: `redis://${auth}127.0.0.1:${port}`,
    port,
    stop: async () => {
      await stopChild(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    kill: async (signal = 'SIGKILL') => {
      await stopChild(child, signal);
    },
  };
  return handle;
}

/** A running Redis Cluster. */
export interface ClusterHandle {
  nodes: { host: string; port: number }[];
  stop(): Promise<void>;
}

/** Starts `masters` cluster-enabled redis-servers and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(masters = 3): Promise<ClusterHandle> {
  const cli = requireBin('redis-cli', 'redis-server');
  const servers = await Promise.all(
    Array.from({ length: masters }, () => startRedisServer({ cluster: true })),
  );
  const addrs = servers.map((s) => `127.0.0.1:${s.port}`);
  await run(cli, ['--cluster', 'create', ...addrs, '--cluster-replicas', '0', '--cluster-yes'], {
    timeout: 30_000,
  });
  // Every node must agree the cluster is ok and see every slot before tests start.
  await until(
    'cluster_state:ok on every node',
    async () => {
      for (const s of servers) {
        const { stdout } = await run(cli, ['-p', String(s.port), 'cluster', 'info']);
        if (
          !stdout.includes('cluster_state:ok') ||
          !stdout.includes('cluster_slots_assigned:16384')
        )
          return false;
      }
      return true;
    },
    30_000,
  );
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

/** A running PostgreSQL primary with one streaming replica. */
export interface PostgresHandle {
  primaryUrl: string;
  replicaUrls: string[];
  primaryPort: number;
  replicaPort: number;
  /** `pg_ctl stop -m fast` on the replica. */
  stopReplica(): Promise<void>;
  /** Starts the replica again and waits until it accepts connections. */
  startReplica(): Promise<void>;
  /** Stops the primary (`-m fast`: SIGINT, after its WAL has gone to the replica). */
  stopPrimary(): Promise<void>;
  /** `pg_ctl promote` on the replica (run as the postgres user); resolves once it takes writes. */
  promoteReplica(): Promise<void>;
  /** Server log files (what the servers refused, e.g. writes on a standby, is logged there). */
  logs: { primary: string; replica: string };
  stop(): Promise<void>;
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

// initdb and postgres refuse to run as root: as root, run them with the postgres user's ids
// (spawn's uid/gid, so signals reach postgres itself, not a runuser wrapper).
function pgIds(): { uid?: number; gid?: number } {
  return isRoot ? { uid: uidOf('postgres'), gid: gidOf('postgres') } : {};
}

/** Runs a PostgreSQL binary (as the `postgres` user when we are root). */
async function pgRun(bin: string, args: string[], timeout = 60_000): Promise<string> {
  const { stdout } = await run(bin, args, {
    timeout,
    maxBuffer: 16 * 1024 * 1024,
    cwd: tmpdir(),
    ...pgIds(),
  });
  return stdout;
}

function pgSpawn(bin: string, args: string[]): ChildProcess {
  return spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir(), ...pgIds() });
}

/** Starts a PostgreSQL primary (wal_level=replica) and a hot-standby streaming replica of it. */
export async function startPostgres(): Promise<PostgresHandle> {
  const binDir = pgBinDir();
  const bin = (n: string) => join(binDir, n);
  const root = mkdtempSync(join(tmpdir(), 'azs-pg-'));
  const primaryDir = join(root, 'primary');
  const replicaDir = join(root, 'replica');
  const sockDir = join(root, 'sock');
  mkdirSync(sockDir);
  if (isRoot) {
    for (const d of [root, sockDir]) chownSync(d, uidOf('postgres'), gidOf('postgres'));
  }
  await pgRun(bin('initdb'), [
    '-D',
    primaryDir,
    '-U',
    'postgres',
    '--auth=trust',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  const hba = [
    'local all all trust',
    'host all all 127.0.0.1/32 trust',
    'host replication all 127.0.0.1/32 trust',
  ].join('\n');
  writeFileSync(join(primaryDir, 'pg_hba.conf'), `${hba}\n`);
  const primaryPort = await freePort();
  const replicaPort = await freePort();
  const common = [
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${sockDir}`,
    '-c',
    'fsync=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=64MB',
  ];
  const primaryLog = join(root, 'primary.log');
  const primary = pgSpawn(bin('postgres'), [
    '-D',
    primaryDir,
    '-p',
    String(primaryPort),
    ...common,
    '-c',
    'wal_level=replica',
    '-c',
    'max_wal_senders=10',
    '-c',
    'hot_standby=on',
  ]);
  track(primary, 'postgres primary', primaryLog);
  await until(
    `PostgreSQL primary on ${primaryPort}`,
    async () => {
      await pgRun(bin('pg_isready'), ['-h', '127.0.0.1', '-p', String(primaryPort), '-q'], 5000);
      return true;
    },
    30_000,
  );
  await pgRun(bin('pg_basebackup'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(primaryPort),
    '-U',
    'postgres',
    '-D',
    replicaDir,
    '-R',
    '-X',
    'stream',
    '--no-sync',
  ]);
  const replicaArgs = [
    '-D',
    replicaDir,
    '-p',
    String(replicaPort),
    ...common,
    '-c',
    'hot_standby=on',
    '-c',
    'hot_standby_feedback=on',
    '-c',
    'wal_receiver_status_interval=1s',
    '-c',
    'max_wal_senders=10',
  ];
  let replica: ChildProcess | undefined;
  const startReplica = async () => {
    replica = pgSpawn(bin('postgres'), replicaArgs);
    track(replica, 'postgres replica', join(root, 'replica.log'));
    await until(
      `PostgreSQL replica on ${replicaPort}`,
      async () => {
        await pgRun(bin('pg_isready'), ['-h', '127.0.0.1', '-p', String(replicaPort), '-q'], 5000);
        return true;
      },
      30_000,
    );
  };
  await startReplica();
  // Wait for streaming to be established, so the first test does not race replication start.
  await until(
    'replica streaming from primary',
    async () => {
      const out = await pgRun(bin('psql'), [
        '-h',
        '127.0.0.1',
        '-p',
        String(primaryPort),
        '-U',
        'postgres',
        '-Atc',
        "select count(*) from pg_stat_replication where state = 'streaming'",
      ]);
      return out.trim() === '1';
    },
    30_000,
  );
  const url = (p: number) => `postgresql://postgres@127.0.0.1:${p}/postgres`;
  return {
    primaryUrl: url(primaryPort),
    replicaUrls: [url(replicaPort)],
    primaryPort,
    replicaPort,
    stopReplica: async () => {
      if (replica) await stopChild(replica, 'SIGINT');
    },
    stopPrimary: async () => {
      await stopChild(primary, 'SIGINT');
    },
    promoteReplica: async () => {
      // -w: pg_ctl waits until the server has left recovery.
      await pgRun(bin('pg_ctl'), ['promote', '-w', '-t', '60', '-D', replicaDir]);
    },
    logs: { primary: primaryLog, replica: join(root, 'replica.log') },
    startReplica: async () => {
      if (replica && replica.exitCode === null && replica.signalCode === null) return;
      await startReplica();
    },
    stop: async () => {
      if (replica) await stopChild(replica, 'SIGINT');
      await stopChild(primary, 'SIGINT');
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function passwdEntry(user: string): string[] {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line)
    throw new Error(`user ${user} not found in /etc/passwd (needed to run PostgreSQL as root)`);
  return line.split(':');
}
function uidOf(user: string): number {
  return Number(passwdEntry(user)[2]);
}
function gidOf(user: string): number {
  return Number(passwdEntry(user)[3]);
}
