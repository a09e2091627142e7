/**
 * Processes the example tests run: the agent service as a child process (as `npm start` runs it)
 * and a real nginx with a config taken from examples/deploy/nginx.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../harness/env.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const NGINX_BIN = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) =>
  existsSync(p),
);

const run = promisify(execFile);
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

/** A child process we started. */
export interface Child {
  proc: ChildProcess;
  /** Everything it wrote, for failure messages. */
  output(): string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
  /** Sends `signal` (default SIGTERM) and waits for the exit, SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

/** Spawns `node --import tsx <script> ...args` in the repo root. */
export function spawnTsx(script: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, script), ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let text = '';
  proc.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<number | string>((res) => {
    proc.once('exit', (code, signal) => {
      live.delete(proc);
      res(code ?? signal ?? 'unknown');
    });
  });
  return {
    proc,
    output: () => text,
    exited,
    async stop(signal = 'SIGTERM', graceMs = 20_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(t);
      }
    },
  };
}

/** Waits until `child` printed a line matching `re`; rejects on exit or after `timeoutMs`. */
export async function waitForOutput(
  child: Child,
  re: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpMatchArray> {
  const t0 = Date.now();
  for (;;) {
    const m = child.output().match(re);
    if (m) return m;
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) {
      throw new Error(`process exited before printing ${re}:\n${child.output()}`);
    }
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`timed out waiting for ${re}:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A service instance started as `npm start` would. */
export interface ServiceChild extends Child {
  url: string;
  port: number;
}

/** Starts examples/agent-service/main.ts on a free port with `env` on top of the process env. */
export async function startService(env: Record<string, string>): Promise<ServiceChild> {
  const port = await freePort();
  const child = spawnTsx('examples/agent-service/main.ts', [], {
    ...process.env,
    LOG_LEVEL: 'silent',
    HOST: '127.0.0.1',
    PORT: String(port),
    ...env,
  });
  await waitForOutput(child, /listening (http:\/\/\S+)/);
  return Object.assign(child, { url: `http://127.0.0.1:${port}`, port });
}

/**
 * Rewrites one of examples/deploy/nginx/*.conf for a local run: the `server agent-N:3000 ...`
 * lines become one line per given backend (keeping the template's parameters), and `listen 80`
 * listens on 127.0.0.1:`port`.
 */
export function localNginxConfig(file: string, backends: string[], port: number): string {
  const text = readFileSync(join(ROOT, 'examples/deploy/nginx', file), 'utf8');
  const re = /^(\s*)server agent-\d+:3000([^;]*);[^\n]*$/gm;
  const first = re.exec(text);
  if (!first) throw new Error(`${file} has no "server agent-N:3000" lines`);
  const [, indent, params] = first;
  let replaced = false;
  const upstream = text.replace(re, () => {
    if (replaced) return '';
    replaced = true;
    return backends.map((b) => `${indent}server ${b}${params};`).join('\n');
  });
  if (!/^\s*listen 80;/m.test(upstream)) throw new Error(`${file} does not listen on 80`);
  return upstream.replace(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`);
}

/** A running nginx. */
export interface NginxHandle {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

function mainConf(dir: string, include: string): string {
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    include ${include};
}
`;
}

function nginxDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'azs-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  mkdirSync(join(dir, 'logs'));
  return dir;
}

/** `nginx -t` on a site config (an http-context fragment). Resolves to nginx's output. */
export async function nginxTest(siteConfig: string): Promise<string> {
  if (!NGINX_BIN) throw new Error('nginx is not installed (apt-get install nginx)');
  const dir = nginxDir();
  try {
    writeFileSync(join(dir, 'site.conf'), siteConfig);
    writeFileSync(join(dir, 'nginx.conf'), mainConf(dir, join(dir, 'site.conf')));
    const { stdout, stderr } = await run(NGINX_BIN, [
      '-t',
      '-p',
      dir,
      '-c',
      join(dir, 'nginx.conf'),
    ]);
    return stdout + stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs nginx in the foreground (`daemon off`) with `siteConfig`, listening on `port`. */
export async function startNginx(siteConfig: string, port: number): Promise<NginxHandle> {
  if (!NGINX_BIN) throw new Error('nginx is not installed (apt-get install nginx)');
  const dir = nginxDir();
  writeFileSync(join(dir, 'site.conf'), siteConfig);
  writeFileSync(join(dir, 'nginx.conf'), mainConf(dir, join(dir, 'site.conf')));
  const proc = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((r) =>
    proc.once('exit', () => {
      live.delete(proc);
      r();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null) {
      const log = existsSync(join(dir, 'error.log'))
        ? readFileSync(join(dir, 'error.log'), 'utf8')
        : '';
      throw new Error(`nginx exited: ${out}\n${log}`);
    }
    try {
      await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() - t0 > 10_000) throw new Error(`nginx did not come up: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    port,
    dir,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGQUIT');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** JSON request helper: status, parsed body, headers. */
export async function http(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(base + path, {
    method,
    signal: AbortSignal.timeout(timeoutMs),
    ...(body === undefined
      ? {}
      : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}
