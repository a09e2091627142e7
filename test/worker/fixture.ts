/**
 * The setup the worker test files share: the three backends, a queue/worker fixture that closes
 * what a test opened, condition waits, and child worker processes for the crash tests.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach } from 'vitest';
import {
  BackgroundWorker,
  type BackgroundWorkerOptions,
  TaskQueue,
  type TaskQueueOptions,
} from '../../src/worker/index.js';
import { childEnv, servers } from '../harness/env.js';

export { sleep } from '../../src/core/timers.js';

/** The backends a worker suite runs on. */
export type Kind = 'memory' | 'redis' | 'cluster';

/** Every backend, for `describe.each`. */
export const KINDS: Kind[] = ['memory', 'redis', 'cluster'];

/** The `redis` option for `kind` (undefined: in memory). */
export function redisFor(kind: Kind): TaskQueueOptions['redis'] {
  if (kind === 'memory') return undefined;
  const s = servers();
  return kind === 'redis' ? s.redisUrl : { nodes: s.clusterNodes };
}

/** Polls `pred` every `stepMs` until it holds; throws after `ms`. */
export async function until(
  pred: () => Promise<boolean> | boolean,
  ms = 20_000,
  stepMs = 10,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error('condition not met in time');
}

/** The error `p` rejects with; throws when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/** The error `fn` throws; throws when it returns. */
export function throws(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

/** What {@link workerFixture} hands a describe block. */
export interface WorkerFixture {
  /** Queues and other closables of the current test, closed after it. */
  opened: { close(): Promise<void> }[];
  /** Workers of the current test, stopped after it (before the queues close). */
  workers: BackgroundWorker[];
  /** A queue on the fixture's backend: a fresh random name, or `name` when given a string. */
  queue(extra?: Partial<TaskQueueOptions> | string): TaskQueue;
  /** A second handle on the same queue (another "process" as far as the API can tell). */
  twin(q: TaskQueue): TaskQueue;
  /** A worker on `q` (visibilityTimeout 5 s unless `opts` says otherwise). */
  worker<D = unknown, R = unknown>(
    q: TaskQueue,
    opts: Omit<BackgroundWorkerOptions<D, R>, 'queue'>,
  ): BackgroundWorker<D, R>;
}

/**
 * Call inside a `describe`: queues on `kind` named `<namePrefix>-<random>` under key prefix
 * `prefix`, and an `afterEach` that stops the test's workers and closes its queues.
 */
export function workerFixture(
  kind: Kind,
  { namePrefix = 'wq', prefix = 'azs-test-worker:' }: { namePrefix?: string; prefix?: string } = {},
): WorkerFixture {
  const opened: { close(): Promise<void> }[] = [];
  const workers: BackgroundWorker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ timeout: 0 });
    for (const q of opened.splice(0)) await q.close();
  });
  return {
    opened,
    workers,
    queue(extra = {}) {
      const options = typeof extra === 'string' ? { name: extra } : extra;
      const q = new TaskQueue({
        name: `${namePrefix}-${randomBytes(5).toString('hex')}`,
        redis: redisFor(kind),
        prefix,
        ...options,
      });
      opened.push(q);
      return q;
    },
    twin(q) {
      const t = new TaskQueue({ ...q.options });
      opened.push(t);
      return t;
    },
    worker<D = unknown, R = unknown>(
      q: TaskQueue,
      opts: Omit<BackgroundWorkerOptions<D, R>, 'queue'>,
    ): BackgroundWorker<D, R> {
      const w = new BackgroundWorker<D, R>({ queue: q, visibilityTimeout: 5, ...opts });
      workers.push(w as BackgroundWorker);
      return w;
    },
  };
}

/** What {@link childWorkers} hands a crash test. */
export interface ChildWorkers {
  /** A scratch directory for the children's logs, removed after the file. */
  dir: string;
  /** Forks `fixtures/<script>` under tsx with `[name, prefix, log]`; resolves once it is ready. */
  spawn(name: string, prefix: string, log: string): Promise<ChildProcess>;
}

/**
 * Worker processes for crash tests, from a script in `test/worker/fixtures/` that sends one IPC
 * message when it is ready. Call at the top level of a test file: an `afterAll` kills the ones
 * still running and removes the log directory.
 */
export function childWorkers(script: string): ChildWorkers {
  const path = fileURLToPath(new URL(`./fixtures/${script}`, import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), `azs-${script.replace(/\W/g, '-')}-`));
  const children = new Set<ChildProcess>();
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    spawn(name, prefix, log) {
      const child = fork(path, [name, prefix, log], {
        env: childEnv(),
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      children.add(child);
      return new Promise((resolve, reject) => {
        child.once('message', () => resolve(child));
        child.once('exit', (code) => reject(new Error(`worker exited early (${code})`)));
      });
    },
  };
}

/** Resolves when `child` has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** The lines of `files` (missing files count as empty), each split on spaces. */
export function logLines(files: string[]): string[][] {
  const out: string[][] = [];
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) if (l) out.push(l.split(' '));
  }
  return out;
}
