/**
 * The example service mounts the dashboard at /dashboard (real Redis, real process): `npm start`
 * prints the link, the page and its API answer, and it is read-only without DASHBOARD_TOKEN.
 */
import { describe, expect, it } from 'vitest';
import { startService } from '../examples/helpers.js';
import { servers, uniquePrefix } from '../harness/env.js';
import { actionHeaders, waitFor } from './fleet.js';

describe('example service dashboard', () => {
  it('prints the link and serves the dashboard at /dashboard', async () => {
    const svc = await startService({
      REDIS_URL: servers().redisUrl,
      QUEUE: uniquePrefix('exdash').slice(0, -1),
      LOG_LEVEL: 'info',
    });
    try {
      await waitFor(() => svc.output().includes(`dashboard: ${svc.url}/dashboard/`), 20_000);
      const page = await fetch(`${svc.url}/dashboard/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('assets/app.js');
      const o = (await (await fetch(`${svc.url}/dashboard/api/overview`)).json()) as {
        queues: { name: string }[];
        breakers: { name: string }[];
      };
      expect(o.queues).toHaveLength(1);
      expect(o.breakers.map((b) => b.name)).toEqual(['llm']);
      const cfg = (await (await fetch(`${svc.url}/dashboard/api/config`)).json()) as {
        readOnly: boolean;
      };
      expect(cfg.readOnly).toBe(true);
      const r = await fetch(`${svc.url}/dashboard/api/queues/${o.queues[0]!.name}/pause`, {
        method: 'POST',
        headers: actionHeaders(),
      });
      expect(r.status).toBe(403);
      expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    } finally {
      await svc.stop();
    }
  }, 60_000);
});
