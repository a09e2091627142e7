/**
 * Continuous traffic over the modules for the failover and resharding tests: one loop per
 * module, one operation at a time (as a request handler sends them), recording what was
 * acknowledged and when, so a test can count what a failover lost and how long each module
 * could not write.
 */
import { Redis } from 'ioredis';
import { DistributedCache } from '../../src/cache/index.js';
import { keySlot } from '../../src/cache/slot.js';
import type { DurabilityOptions } from '../../src/core/durability.js';
import { CostOptimizer } from '../../src/scaling/index.js';
import { DistributedSessionManager } from '../../src/session/index.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';

/** What one module's loop saw. */
export interface LoopReport {
  module: string;
  acked: number;
  failed: number;
  /** Error codes/messages seen, with counts. */
  errors: Record<string, number>;
  /** Longest time between two acknowledged writes, in seconds. */
  longestGap: number;
  /** Acknowledged writes missing afterwards. */
  lost: number;
}

type Seeds = { host: string; port: number }[];

/** Finds a name whose keys (keys of `sample` with `sample` replaced) hash to `slots`. */
export function nameInSlots(
  keys: string[],
  sample: string,
  inSlots: (slot: number) => boolean,
  base: string,
): string {
  for (let i = 0; i < 1_000_000; i++) {
    const cand = `${base}${i}`;
    if (keys.every((k) => inSlots(keySlot(k.split(sample).join(cand))))) return cand;
  }
  throw new Error('no name found for those slots');
}

/** Every key containing `needle`, from every master (SCAN). */
export async function keysWith(seeds: Seeds, needle: string): Promise<string[]> {
  const out = new Set<string>();
  for (const s of seeds) {
    const c = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 0 });
    c.on('error', () => {});
    try {
      let cursor = '0';
      do {
        const [next, batch] = await c.scan(cursor, 'MATCH', `*${needle}*`, 'COUNT', 1000);
        cursor = next;
        for (const k of batch) out.add(k);
      } while (cursor !== '0');
    } catch {
      // A node that is down, or a replica refusing: another node has the keys.
    } finally {
      c.disconnect();
    }
  }
  return [...out];
}

class Loop {
  acked = 0;
  failed = 0;
  errors: Record<string, number> = {};
  private last = 0;
  longestGap = 0;
  running = true;
  done: Promise<void>;

  constructor(
    readonly module: string,
    op: (i: number) => Promise<void>,
  ) {
    this.last = performance.now();
    this.done = (async () => {
      let i = 0;
      while (this.running) {
        try {
          await op(i++);
          const now = performance.now();
          this.longestGap = Math.max(this.longestGap, (now - this.last) / 1000);
          this.last = now;
          this.acked++;
        } catch (e) {
          this.failed++;
          const code = `${(e as { code?: string }).code ?? 'error'}: ${String((e as Error).message).slice(0, 100)}`;
          this.errors[String(code)] = (this.errors[String(code)] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, 20));
        }
        // Yield: several loops share one event loop with the test.
        await new Promise((r) => setImmediate(r));
      }
    })();
  }
}

/** Module instances with names whose keys live on the chosen slots, and their traffic loops. */
export class Traffic {
  private loops: Loop[] = [];
  private closers: (() => Promise<unknown>)[] = [];
  private readonly ackedTasks: string[] = [];
  private readonly ackedMessages: string[] = [];
  private spendAcked = 0;
  private readonly ackedCacheKeys: string[] = [];
  private queue!: TaskQueue;
  private session!: DistributedSessionManager;
  private cost!: CostOptimizer;
  private cache!: DistributedCache;
  private sessionId = '';
  private cacheTag = '';
  completed = 0;

  constructor(
    private readonly seeds: Seeds,
    private readonly tag: string,
    private readonly durability: DurabilityOptions | undefined,
  ) {}

  /** Builds the modules with names on `inSlots` and starts the loops. */
  async start(inSlots: (slot: number) => boolean, worker = true): Promise<void> {
    const redis = { nodes: this.seeds };
    const d = this.durability ? { durability: this.durability } : {};
    const qname = nameInSlots(
      [`azs:worker:{${this.tag}q}`],
      `${this.tag}q`,
      inSlots,
      `${this.tag}q`,
    );
    this.queue = new TaskQueue({ redis, name: qname, ...d });
    this.sessionId = nameInSlots(
      [`azs-${this.tag}:session:${this.tag}s`],
      `${this.tag}s`,
      inSlots,
      `${this.tag}s`,
    );
    this.session = new DistributedSessionManager({
      redis,
      prefix: `azs-${this.tag}:session:`,
      ...d,
    });
    // The spend key holds the hour: `{name:YYYY-MM-DDTHH}`.
    const hour = new Date().toISOString().slice(0, 13);
    const costName = nameInSlots(
      [`{${this.tag}c:${hour}}`],
      `${this.tag}c`,
      inSlots,
      `${this.tag}c`,
    );
    this.cost = new CostOptimizer({ redis, name: costName, ...d });
    this.cacheTag = nameInSlots([`{${this.tag}k}`], `${this.tag}k`, inSlots, `${this.tag}k`);
    this.cache = new DistributedCache({
      redis,
      prefix: `azs-${this.tag}:`,
      onBackendError: 'throw',
    });
    this.closers.push(
      () => this.queue.close(),
      () => this.session.close(),
      () => this.cost.close(),
      () => this.cache.close(),
    );
    await this.queue.submitTask({ warm: true });
    await this.session.appendMessage(this.sessionId, { role: 'system', content: 'warm' });
    await this.cost.recordSpend(0);
    await this.cache.set(`{${this.cacheTag}}warm`, '1');
    if (worker) {
      const w = new BackgroundWorker<unknown, number>({
        queue: this.queue,
        handler: () => {
          this.completed++;
          return 1;
        },
        visibilityTimeout: 5,
      });
      await w.start();
      this.closers.unshift(() => w.stop({ timeout: 0 }));
    }
    this.loops.push(
      new Loop('worker.submit', async (i) => {
        this.ackedTasks.push(await this.queue.submitTask({ i }));
      }),
      new Loop('session.append', async (i) => {
        await this.session.appendMessage(this.sessionId, { role: 'user', content: `m${i}` });
        this.ackedMessages.push(`m${i}`);
      }),
      new Loop('scaling.spend', async () => {
        await this.cost.recordSpend(1);
        this.spendAcked++;
      }),
      new Loop('cache.set', async (i) => {
        const key = `{${this.cacheTag}}k${i}`;
        await this.cache.set(key, String(i));
        this.ackedCacheKeys.push(key);
      }),
    );
  }

  /** Submits one task (after `stop()`, to see the worker still claims). */
  async submitOne(): Promise<string> {
    return this.queue.submitTask({ after: true });
  }

  /** Per loop: acknowledged, failed, errors (for a test's diagnostics). */
  snapshot(): string {
    return this.loops
      .map((l) => `${l.module} acked=${l.acked} failed=${l.failed} ${JSON.stringify(l.errors)}`)
      .join('; ');
  }

  /** Acknowledged writes so far, per module. */
  ackedCount(): number {
    return Math.min(...this.loops.map((l) => l.acked));
  }

  /** Stops the loops and counts what is missing. */
  async stop(): Promise<LoopReport[]> {
    for (const l of this.loops) l.running = false;
    await Promise.all(this.loops.map((l) => l.done));
    const lost: Record<string, number> = {};
    let missingTasks = 0;
    for (const id of this.ackedTasks) if ((await this.queue.getTask(id)) === null) missingTasks++;
    lost['worker.submit'] = missingTasks;
    const messages = new Set(
      (await this.session.getSession(this.sessionId)).messages.map((m) => String(m.content)),
    );
    lost['session.append'] = this.ackedMessages.filter((m) => !messages.has(m)).length;
    const spend = await this.cost.currentSpend();
    lost['scaling.spend'] = Math.max(0, this.spendAcked - spend);
    const reader = new Redis.Cluster(this.seeds, { redisOptions: { maxRetriesPerRequest: 3 } });
    reader.on('error', () => {});
    let missingKeys = 0;
    for (const k of this.ackedCacheKeys) {
      if ((await reader.exists(`azs-${this.tag}:${k}`)) === 0) missingKeys++;
    }
    reader.disconnect();
    lost['cache.set'] = missingKeys;
    return this.loops.map((l) => ({
      module: l.module,
      acked: l.acked,
      failed: l.failed,
      errors: l.errors,
      longestGap: Number(l.longestGap.toFixed(3)),
      lost: lost[l.module] ?? 0,
    }));
  }

  async close(): Promise<void> {
    for (const c of this.closers) await c().catch(() => undefined);
  }
}
