/**
 * The dashboard in a real browser (headless Debian Chromium driven by playwright-core) against
 * a fleet on real Redis: no console errors (CSP violations included), the page's numbers equal
 * the JSON API and queue.stats(), redrive from the page makes a dead letter run, an action
 * without authorisation is refused (403) and changes nothing, and a task whose data holds
 * `<script>` renders as text. With AZS_SCREENSHOTS=1 it writes docs/img/dashboard-*.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/index.js';
import { ScalingAdvisor } from '../../src/scaling/advisor.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { type Fleet, TOKEN, startFleet, waitFor } from './fleet.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', process.env.AZS_CHROMIUM ?? '']
  .filter(Boolean)
  .find((p) => existsSync(p));
if (!CHROMIUM) {
  console.warn('dashboard browser test skipped: no chromium binary (apt-get install chromium)');
}
const SHOTS = process.env.AZS_SCREENSHOTS === '1';
const IMG = resolve(import.meta.dirname, '../../docs/img');
const HOUR = 3_600_000;

describe.skipIf(!CHROMIUM)('dashboard in headless Chromium', () => {
  let f: Fleet;
  let browser: Browser;
  let metrics: Metrics;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    metrics = new Metrics();
    const advisor = new ScalingAdvisor({ thresholds: { p95LatencyMs: 800 } });
    f = await startFleet({ metrics, advisor, sampleInterval: 1, refreshInterval: 1 });
    for (let i = 0; i < 200; i++) metrics.record('latency', 0.05 + (i % 20) * 0.05);
    // Spend in earlier hours, through optimizers on the same budget with a clock set back.
    for (const [hoursAgo, dollars] of [
      [5, 3.2],
      [4, 6.1],
      [3, 4.4],
      [2, 9.8],
      [1, 7.5],
    ] as const) {
      const past = new CostOptimizer({
        redis: f.client,
        prefix: (f.optimizer as unknown as { store: { prefix: string } }).store.prefix,
        now: () => Date.now() - hoursAgo * HOUR,
      });
      await past.recordSpend(dollars);
      await past.close();
    }
    await f.optimizer.recordSpend(4.25);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await f?.stop();
  });

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    await page.goto(`${f.base}/${path}`);
    await page.waitForSelector('body[data-ready]');
    return page;
  }

  async function deadLetter(data: Record<string, unknown>): Promise<string> {
    const id = await f.queue.submitTask({ fail: true, ...data });
    await waitFor(async () => (await f.queue.deadLetters()).some((t) => t.id === id));
    return id;
  }

  it('shows the overview with the numbers of the JSON API and queue.stats()', async () => {
    const xss = await deadLetter({
      note: '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">',
    });
    for (let i = 0; i < 5; i++) await f.queue.submitTask({ n: i });
    await f.queue.submitTask({ later: true }, { delay: 3600 });
    // Settled means none waiting and none running: a claimed task (or one a worker prefetched)
    // is no longer queued but not yet completed, and would complete between the two reads below.
    await waitFor(async () => {
      const s = await f.queue.stats();
      return s.queued === 0 && s.processing === 0;
    });
    const stats = await f.queue.stats();
    const page = await open('');
    // The page refreshes every second; wait for it to show the settled figures.
    const shown = async (k: string) =>
      page.locator(`#queues tr[data-queue="jobs"] [data-stat="${k}"]`).textContent();
    await waitFor(async () => (await shown('deadLettered')) === String(stats.deadLettered));
    const api = (await (await fetch(`${f.base}/api/overview`)).json()) as {
      queues: { stats: Record<string, number> }[];
      spend: { spent: number };
    };
    for (const k of ['queued', 'delayed', 'completed', 'deadLettered']) {
      const want = (stats as unknown as Record<string, number>)[k]!;
      expect(api.queues[0]!.stats[k]).toBe(want);
      expect(Number((await shown(k))!.replace(/,/g, ''))).toBe(want);
    }
    expect(await page.locator('[data-value="spent"]').textContent()).toBe(
      `$${api.spend.spent.toFixed(2)}`,
    );
    expect(await page.locator('#advisor .badge').count()).toBe(1);
    expect(await page.locator('#breakers [data-breaker]').count()).toBe(1);
    expect(await page.locator('#limits [data-rate="openai"]').count()).toBe(1);
    // Let the last-hour chart gather a few samples for the screenshot.
    await waitFor(async () => (await page.locator('[data-chart="jobs"] path.line').count()) > 0);
    if (SHOTS) {
      mkdirSync(IMG, { recursive: true });
      await page.screenshot({ path: join(IMG, 'dashboard-overview.png'), fullPage: true });
    }
    await page.close();
    expect(xss).toBeTruthy();
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('renders user text holding <script> (task data, errors) as text', async () => {
    const id = await deadLetter({
      note: '<script>window.__pwned = 1</script><b id="injected">x</b>',
    });
    const page = await open('#/queue/jobs');
    await page.click('[data-tab="failed"]');
    await page.click(`tr[data-task="${id}"]`);
    const pre = page.locator('#task [data-field="error"]');
    await pre.waitFor();
    // The handler's error message carries the note: user text, shown as text.
    expect(await pre.textContent()).toContain(
      '<script>window.__pwned = 1</script><b id="injected">',
    );
    expect(await pre.textContent()).not.toContain('10.1.2.3');
    const data = await page.locator('#task [data-field="data"]').textContent();
    // The task's data (kept by Redis until the task completes) is shown, as text too.
    expect(data).toContain('<script>window.__pwned = 1</script>');
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBe(
      undefined,
    );
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await page.locator('main script').count()).toBe(0);
    // The queue page's counts equal queue.stats().
    const stats = await f.queue.stats();
    await waitFor(
      async () =>
        (await page.locator('#queue [data-stat="deadLettered"]').textContent()) ===
        String(stats.deadLettered),
    );
    if (SHOTS) await page.screenshot({ path: join(IMG, 'dashboard-queue.png'), fullPage: true });
    await page.close();
    expect(consoleErrors).toEqual([]);
  }, 60_000);

  it('refuses an action without authorisation (403) and changes nothing', async () => {
    const id = await deadLetter({ marker: 'unauthorised' });
    const page = await open('#/queue/jobs');
    await page.click('[data-tab="failed"]');
    const button = page.locator(`tr[data-task="${id}"] [data-action="retry"]`);
    await button.click();
    await page.waitForSelector('#toast.error:not([hidden])');
    expect(await page.locator('#toast').textContent()).toContain('403');
    // A forged request from the page without the anti-CSRF header is refused too.
    const status = await page.evaluate(
      async ([p, token]) =>
        (await fetch(p!, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status,
      [`api/queues/jobs/tasks/${id}/retry`, TOKEN],
    );
    expect(status).toBe(403);
    expect((await f.queue.deadLetters()).some((t) => t.id === id)).toBe(true);
    expect((await f.queue.getTask(id))?.status).toBe('failed');
    await page.close();
    // The refused fetches are the only console errors (Chromium logs failed requests).
    const rest = consoleErrors.splice(0).filter((e) => !e.includes('403'));
    expect(rest).toEqual([]);
  }, 60_000);

  it('redrives a dead letter from the page, and it runs', async () => {
    const id = await deadLetter({ marker: 'click-redrive' });
    f.heal();
    const page = await open('#/queue/jobs');
    await page.fill('#auth input', TOKEN);
    await page.locator('#auth input').dispatchEvent('change');
    await page.click('[data-tab="failed"]');
    await page.locator(`tr[data-task="${id}"] [data-action="retry"]`).click();
    await waitFor(async () => (await f.queue.getTask(id))?.status === 'completed');
    expect(
      f.runs.filter((d) => (d as { marker?: string }).marker === 'click-redrive'),
    ).toHaveLength(2);
    expect((await f.queue.deadLetters()).some((t) => t.id === id)).toBe(false);
    await page.close();
    expect(consoleErrors).toEqual([]);
  }, 60_000);
});
