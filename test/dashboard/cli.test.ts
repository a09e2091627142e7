/**
 * `azscale dashboard` as a real process against the test Redis: it prints the page's URL,
 * serves the queue's figures without showing the Redis address, refuses actions without the
 * token from the environment, and exits 0 on SIGTERM.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.js';
import { TaskQueue } from '../../src/worker/index.js';
import { spawnTsx } from '../examples/helpers.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { actionHeaders, waitFor } from './fleet.js';

describe('azscale dashboard', () => {
  it('serves a fleet queue by name and stops on SIGTERM', async () => {
    const redisUrl = servers().redisUrl;
    const prefix = uniquePrefix('dashcli');
    const client = new Redis(redisUrl);
    const queue = new TaskQueue({ name: 'cli-q', redis: client, prefix });
    await queue.submitTask({ a: 1 });
    await queue.submitTask({ a: 2 });
    const child = spawnTsx(
      'src/cli/main.ts',
      ['dashboard', '--redis', redisUrl, '--queue', 'cli-q', '--prefix', prefix, '--port', '0'],
      { ...process.env, AZSCALE_DASHBOARD_TOKEN: 'cli-token-1234' },
    );
    try {
      await waitFor(() => /http:\/\/\S+\/dashboard\//.test(child.output()), 30_000);
      const url = /(http:\/\/\S+\/dashboard\/)/.exec(child.output())![1]!;
      const text = await (await fetch(`${url}api/queues/cli-q`)).text();
      const view = JSON.parse(text) as { stats: { queued: number } };
      expect(view.stats.queued).toBe((await queue.stats()).queued);
      expect(view.stats.queued).toBe(2);
      expect(text).not.toContain(new URL(redisUrl).port);
      const refused = await fetch(`${url}api/queues/cli-q/pause`, {
        method: 'POST',
        headers: actionHeaders('wrong'),
      });
      expect(refused.status).toBe(403);
      expect(await queue.isPaused()).toBe(false);
      const ok = await fetch(`${url}api/queues/cli-q/pause`, {
        method: 'POST',
        headers: actionHeaders('cli-token-1234'),
      });
      expect(ok.status).toBe(200);
      expect(await queue.isPaused()).toBe(true);
      expect(await child.stop('SIGTERM')).toBe(0);
    } finally {
      await child.stop('SIGKILL', 1000);
      await queue.close();
      client.disconnect();
    }
  }, 60_000);

  it('answers a bad command line with exit code 2', async () => {
    const err: string[] = [];
    const io = { out: () => {}, err: (t: string) => err.push(t) };
    expect(await runCli(['dashboard', '--queue', 'x'], io)).toBe(2);
    expect(await runCli(['dashboard', '--redis', 'redis://127.0.0.1:1'], io)).toBe(2);
    expect(
      await runCli(
        ['dashboard', '--redis', 'redis://127.0.0.1:1', '--queue', 'x', '--port', 'nan'],
        io,
      ),
    ).toBe(2);
    expect(err.join('')).toContain('--redis');
  });
});
