import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { childEnv } from '../harness/env.js';

/** A cache in another OS process, driven over stdin/stdout (see fixtures/cache-child.ts). */
export interface CacheChild {
  call(op: string, args?: Record<string, unknown>): Promise<unknown>;
  stop(): Promise<void>;
}

export async function startCacheChild(args: string[]): Promise<CacheChild> {
  const script = path.resolve(__dirname, 'fixtures/cache-child.ts');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    env: childEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const ready = new Promise<void>((resolve, reject) => {
    waiting.set(0, { resolve: () => resolve(), reject });
    const timer = setTimeout(() => reject(new Error(`child not ready in 30 s: ${stderr}`)), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      for (const w of waiting.values()) w.reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
  rl.on('line', (line) => {
    let msg: { id: number; value?: unknown; error?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    const w = waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.reject(new Error(msg.error));
    else w.resolve(msg.value);
  });
  await ready;
  return {
    call(op, a = {}) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        child.stdin?.write(`${JSON.stringify({ id, op, ...a })}\n`);
      });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.stdin?.end();
      }),
  };
}
