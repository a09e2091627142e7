/** Redis down: every call fails fast with BackendUnavailableError, and service resumes after. */
import { afterEach, describe, expect, it } from 'vitest';
import { BackendUnavailableError, isBackendUnavailableError } from '../../src/core/errors.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { type ServerHandle, freePort, startRedisServer } from '../harness/env.js';

async function timed<T>(p: Promise<T>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
    return { error: undefined, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

describe('session manager with Redis down', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('fails every operation fast once the server is gone, then recovers when it is back', async () => {
    let server: ServerHandle = await startRedisServer();
    const port = server.port;
    cleanup.push(() => server.stop());
    const sessions = new DistributedSessionManager({ redis: server.url, connectTimeout: 2 });
    cleanup.push(() => sessions.close());
    await sessions.appendMessage('s1', { role: 'user', content: 'before' });

    await server.kill('SIGKILL');
    const calls: [string, () => Promise<unknown>][] = [
      ['getSession', () => sessions.getSession('s1')],
      ['saveSession', () => sessions.saveSession('s1', { messages: [] })],
      ['appendMessage', () => sessions.appendMessage('s1', { content: 'x' })],
      ['updateSession', () => sessions.updateSession('s1', (s) => s)],
      ['withSession', () => sessions.withSession('s1', () => 1)],
      ['extendSession', () => sessions.extendSession('s1')],
      ['deleteSession', () => sessions.deleteSession('s1')],
    ];
    for (const [name, call] of calls) {
      const { error, ms } = await timed(call());
      expect(error, name).toBeInstanceOf(BackendUnavailableError);
      expect(isBackendUnavailableError(error)).toBe(true);
      // No hang: a known-down server fails at once (measured: under 1 ms), not after a timeout.
      expect(ms, name).toBeLessThan(2500);
    }

    server = await startRedisServer({ port });
    const deadline = Date.now() + 10_000;
    let n: number | undefined;
    while (n === undefined && Date.now() < deadline) {
      n = await sessions.appendMessage('s2', { content: 'after' }).catch(() => undefined);
      if (n === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(n).toBe(1);
    expect((await sessions.getSession('s2')).messages).toEqual([{ content: 'after' }]);
  });

  it('a server that was never there fails the first call at once, not after connectTimeout', async () => {
    const port = await freePort();
    // The default connectTimeout (5 s): a refused connection must not wait it out.
    const sessions = new DistributedSessionManager({ redis: `redis://127.0.0.1:${port}` });
    cleanup.push(() => sessions.close());
    const first = await timed(sessions.getSession('x'));
    expect(first.error).toBeInstanceOf(BackendUnavailableError);
    expect(first.ms).toBeLessThan(3000);
    for (let i = 0; i < 5; i++) {
      const next = await timed(sessions.appendMessage('x', { content: 'y' }));
      expect(next.error).toBeInstanceOf(BackendUnavailableError);
      expect(next.ms).toBeLessThan(3000);
      await new Promise((r) => setTimeout(r, 50 * i));
    }
  });

  it('error messages carry no password', async () => {
    const port = await freePort();
    const sessions = new DistributedSessionManager({
      redis: `redis://:hunter2-secret@127.0.0.1:${port}`,
      connectTimeout: 1,
    });
    cleanup.push(() => sessions.close());
    const { error } = await timed(sessions.getSession('x'));
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(String((error as Error).message)).not.toContain('hunter2');
    expect(JSON.stringify((error as BackendUnavailableError).context)).not.toContain('hunter2');
  });
});
