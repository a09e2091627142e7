import type { Redis } from 'ioredis';
import { replyErrorAsUnavailable } from '../core/backend-errors.js';
import type { RedisClient, RedisConnection } from '../core/connection.js';
import { type DurabilityPolicy, durableWrite } from '../core/durability.js';
import { LuaScript } from '../core/lua-script.js';
import { hashTag } from '../core/keys.js';
import type {
  BackendStats,
  CancelOutcome,
  ClaimRequest,
  ClaimResult,
  ClaimedTask,
  Completion,
  FailOutcome,
  Failure,
  HeartbeatOutcome,
  NewTask,
  QueueBackend,
  TaskRecord,
  TaskRef,
  WorkWaiter,
} from './backend.js';
import type { TaskEventReader, TaskEventSource } from './event-source.js';
import type { FlowBackend, NewFlowTask } from './flow-backend.js';
import { queueFullError } from './queue-full.js';
import { openRedisEventReader } from './redis-events.js';
import { EVENTS_MAX_LEN, withEventsMaxLen } from './redis-flow-scripts.js';
import { redisChildResults, redisSubmitFlow } from './redis-flows.js';
import * as L from './redis-scripts.js';
import { parseRecord } from './redis-record.js';
import type { TaskStatus } from './task-status.js';

export { parseRecord };
import type { BackendRateLimit, CleanableStatus, QueueAdminBackend } from './admin.js';
import * as A from './redis-admin.js';

type Arg = string | number;

const SOURCES = {
  submit: L.SUBMIT,
  claim: L.CLAIM,
  complete: L.COMPLETE,
  fail: L.FAIL,
  heartbeat: L.HEARTBEAT,
  release: L.RELEASE,
  progress: L.PROGRESS,
  cancel: L.CANCEL,
  redrive: L.REDRIVE,
  stats: L.STATS,
  get: L.GET,
  deadLetters: L.DEAD_LETTERS,
};
type Scripts = { [K in keyof typeof SOURCES]: LuaScript };

/** The scripts per events cap (one set for the default, another per other value in use). */
const SCRIPT_SETS = new Map<number, Scripts>();
function scriptsFor(eventsMaxLen: number): Scripts {
  let set = SCRIPT_SETS.get(eventsMaxLen);
  if (!set) {
    set = Object.fromEntries(
      Object.entries(SOURCES).map(([k, src]) => [
        k,
        new LuaScript(withEventsMaxLen(src, eventsMaxLen), `worker ${k}`),
      ]),
    ) as Scripts;
    SCRIPT_SETS.set(eventsMaxLen, set);
  }
  return set;
}
/** The default set, for tests that check the scripts' declared keys. @internal */
export const SCRIPTS: Scripts = scriptsFor(EVENTS_MAX_LEN);

const GROUP = 'workers';
/** How long past its BLOCK time a waiter's read may stay unanswered before its connection is dropped. */
const WAIT_GRACE_MS = 2000;
/** Tasks per submit script call: bounds how long one call holds the server. */
const SUBMIT_CHUNK = 500;

/** Options of {@link RedisQueueBackend}. */
export interface RedisQueueBackendOptions {
  /** Queue name; carried in every key as the Cluster hash tag. */
  name: string;
  /** Key prefix. */
  prefix: string;
  /** Seconds finished tasks are kept. */
  resultTtl: number;
  /** Most tasks waiting at once; Infinity: no bound. @default Infinity */
  maxQueued?: number;
  /** Queue-wide start rate, enforced in the claim script. @default no limit */
  rateLimit?: BackendRateLimit;
  /** Replicas that must confirm submits, completions and failures (see `durableWrite`). */
  durability?: DurabilityPolicy;
  /** Newest events the events stream keeps (approximately). @default 10000 */
  eventsMaxLen?: number;
}

/**
 * The Redis backend: one stream per queue (plus one for the priority lane) read by a consumer
 * group, one hash per task, sorted sets for delayed tasks, priorities and dead letters. Every key
 * of a queue shares the hash tag `{name}`, so all of a queue's scripts run on one Cluster slot.
 */
export class RedisQueueBackend
  implements QueueBackend, QueueAdminBackend, TaskEventSource, FlowBackend
{
  readonly kind = 'redis';
  private readonly conn: RedisConnection;
  private readonly keys: string[];
  private readonly ttlMs: number;
  private readonly name: string;
  private readonly maxQueued: number;
  private readonly rateLimit: BackendRateLimit | undefined;
  private groupReady: Promise<void> | undefined;
  private readonly durability: DurabilityPolicy | undefined;
  private readonly scripts: Scripts;

  constructor(conn: RedisConnection, options: RedisQueueBackendOptions) {
    this.conn = conn;
    const base = `${options.prefix}${hashTag(options.name)}`;
    // Order matters: the scripts' KEYS[1..11] (see redis-scripts.ts).
    this.keys = ['s', 'h', 'd', 'p', 'x', 'm', 'w', 't', 'td', 'tr', 'te'].map(
      (k) => `${base}:${k}`,
    );
    // KEYS[12..13]: the cancelled index and the rate-limit log (see redis-scripts.ts).
    this.keys.push(`${base}:ix`, `${base}:rl`);
    // KEYS[14]: the events stream (see redis-flow-scripts.ts).
    this.keys.push(`${base}:ev`);
    // KEYS[15]: flow parents waiting for their children (see redis-flow-scripts.ts).
    this.keys.push(`${base}:wc`);
    this.rateLimit = options.rateLimit;
    this.ttlMs = Math.max(1, Math.round(options.resultTtl * 1000));
    this.name = options.name;
    this.maxQueued = options.maxQueued ?? Number.POSITIVE_INFINITY;
    this.durability = options.durability;
    this.scripts = scriptsFor(options.eventsMaxLen ?? EVENTS_MAX_LEN);
  }

  /**
   * The hash that holds task `id` (a field named after the id, not a key of its own since 0.2).
   * @deprecated Kept for 0.1 callers; read tasks with {@link TaskQueue.getTask}.
   */
  taskKey(_id: string): string {
    return this.keys[7] as string;
  }

  /**
   * Every key of the queue, in the order the scripts declare them: streams, delayed, priority
   * and dead-letter sets, meta, wake stream, task/data/result hashes, expiry set.
   */
  get queueKeys(): readonly string[] {
    return this.keys;
  }

  /** The queue name. */
  get queueName(): string {
    return this.name;
  }

  /** @internal Runs a script of this queue (also used by redis-flows.ts). */
  async run(
    op: string,
    script: LuaScript,
    args: readonly Arg[],
    client?: RedisClient,
    durable = false,
  ): Promise<unknown> {
    try {
      const c = client ?? (await this.conn.get());
      if (!durable) return await script.run(c, this.keys, args);
      // Every key of the queue shares one slot: the first names the node that took the write.
      return await durableWrite(this.durability, c, this.keys[0] as string, `worker ${op}`, (w) =>
        script.run(w, this.keys, args),
      );
    } catch (e) {
      throw this.mapError(e, op);
    }
  }

  /** Connection errors and Redis replies alike become typed errors without command arguments. */
  private mapError(e: unknown, op: string): unknown {
    // Core maps and sanitises; the worker's contract makes every reply error "retry later".
    return replyErrorAsUnavailable(this.conn.mapError(e, `worker ${op}`));
  }

  /** Like `conn.run`, with reply errors sanitised. */
  private async exec<T>(op: string, fn: (client: RedisClient) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.conn.get());
    } catch (e) {
      throw this.mapError(e, op);
    }
  }

  private ensureGroup(): Promise<void> {
    this.groupReady ??= this.exec('group create', async (client) => {
      for (const key of [this.keys[0], this.keys[1]] as string[]) {
        try {
          await client.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
        } catch (e) {
          if (!(e instanceof Error && e.message.startsWith('BUSYGROUP'))) throw e;
        }
      }
    }).catch((e) => {
      this.groupReady = undefined;
      throw e;
    });
    return this.groupReady;
  }

  private async withGroup<T>(fn: () => Promise<T>): Promise<T> {
    await this.ensureGroup();
    try {
      return await fn();
    } catch (e) {
      // Someone deleted the stream (FLUSHDB, a key eviction): recreate the group and retry once.
      if (e instanceof Error && e.message.includes('NOGROUP')) {
        this.groupReady = undefined;
        await this.ensureGroup();
        return fn();
      }
      throw e;
    }
  }

  async submit(tasks: readonly NewTask[], now: number): Promise<boolean[]> {
    const max = Number.isFinite(this.maxQueued) ? this.maxQueued : -1;
    const head: Arg[] = [now, max, GROUP];
    if (tasks.length === 1) {
      const t = tasks[0] as NewTask;
      const args = head.concat(taskArgs(t));
      return this.parseSubmit(
        (await this.run('submit', this.scripts.submit, args, undefined, true)) as number[],
        1,
      );
    }
    // Chunks go out together: one connection runs them in order, so ids keep their order and
    // the round trips overlap. With maxQueued each chunk is all or nothing.
    let client: RedisClient;
    try {
      client = await this.conn.get();
    } catch (e) {
      throw this.mapError(e, 'submit');
    }
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < tasks.length; i += SUBMIT_CHUNK) {
      const args = head.slice();
      const end = Math.min(tasks.length, i + SUBMIT_CHUNK);
      for (let j = i; j < end; j++) args.push(...taskArgs(tasks[j] as NewTask));
      calls.push(this.run('submit', this.scripts.submit, args, client, true));
    }
    const settled = await Promise.allSettled(calls);
    const out: boolean[] = [];
    let full: unknown;
    let created = 0;
    settled.forEach((r, k) => {
      const size = Math.min(SUBMIT_CHUNK, tasks.length - k * SUBMIT_CHUNK);
      if (r.status === 'rejected') {
        full ??= r.reason;
        return;
      }
      const v = r.value as number[];
      if (v[0] === -1) {
        full ??= queueFullError(this.name, this.maxQueued, Number(v[1]), size, created);
        return;
      }
      for (const x of v) {
        out.push(x === 1);
        if (x === 1) created++;
      }
    });
    if (full !== undefined) throw full;
    return out;
  }

  private parseSubmit(r: number[], size: number): boolean[] {
    if (r[0] === -1) throw queueFullError(this.name, this.maxQueued, Number(r[1]), size);
    return r.map((v) => v === 1);
  }

  async get(id: string, options?: { data?: boolean }): Promise<TaskRecord | null> {
    const withData = options?.data === true;
    const r = (await this.run('getTask', this.scripts.get, [
      id,
      Date.now(),
      withData ? '1' : '0',
    ])) as [string, number, string, string | null | undefined] | null;
    if (!r) return null;
    const rec = parseRecord(id, r[0], r[1] === 1 ? r[2] : undefined);
    if (rec && withData && typeof r[3] === 'string') rec.data = r[3];
    return rec;
  }

  async cancel(id: string, now: number): Promise<CancelOutcome> {
    const r = (await this.run('cancelTask', this.scripts.cancel, [id, now, this.ttlMs])) as number;
    return r === -1 ? 'missing' : r === 0 ? 'terminal' : r === 2 ? 'running' : 'cancelled';
  }

  async claim(req: ClaimRequest): Promise<ClaimResult> {
    const comps = req.completions ?? [];
    const args: Arg[] = [
      GROUP,
      req.consumer,
      req.now,
      req.count,
      Math.round(req.reclaimIdleMs ?? 0),
      req.defaultAttempts,
      this.ttlMs,
      comps.length,
    ];
    for (const c of comps) args.push(c.id, c.lane, c.entryId, c.result);
    args.push(this.rateLimit?.max ?? 0, this.rateLimit?.perMs ?? 0);
    // A claim that carries completions acknowledges them: it waits for replicas like complete().
    const r = (await this.withGroup(() =>
      this.run('claim', this.scripts.claim, args, undefined, comps.length > 0),
    )) as Arg[];
    const tasks: ClaimedTask[] = [];
    for (let i = 2; i + 8 < r.length; i += 9) {
      const trace = String(r[i + 7]);
      const name = String(r[i + 8]);
      tasks.push({
        lane: Number(r[i]),
        entryId: String(r[i + 1]),
        id: String(r[i + 2]),
        data: String(r[i + 3]),
        attempt: Number(r[i + 4]),
        maxAttempts: Number(r[i + 5]),
        timeout: Number(r[i + 6]),
        ...(trace ? { trace } : {}),
        ...(name ? { name } : {}),
      });
    }
    const due = Number(r[0]);
    return { tasks, nextDueAt: due >= 0 ? due : null, token: String(r[1]) };
  }

  async complete(items: readonly Completion[], now: number): Promise<void> {
    if (items.length === 0) return;
    const args: Arg[] = [GROUP, now, this.ttlMs];
    for (const c of items) args.push(c.id, c.lane, c.entryId, c.result);
    await this.run('complete', this.scripts.complete, args, undefined, true);
  }

  async fail(items: readonly Failure[], now: number): Promise<FailOutcome[]> {
    if (items.length === 0) return [];
    const args: Arg[] = [GROUP, now, this.ttlMs];
    for (const f of items) {
      args.push(f.id, f.lane, f.entryId, f.attempt, f.error, f.retryAt === null ? -1 : f.retryAt);
    }
    const r = (await this.run('fail', this.scripts.fail, args, undefined, true)) as number[];
    return r.map((v) => (v === 1 ? 'retry' : v === 2 ? 'dead' : 'ignored'));
  }

  async heartbeat(
    consumer: string,
    items: readonly TaskRef[],
    _now: number,
  ): Promise<HeartbeatOutcome[]> {
    if (items.length === 0) return [];
    const args: Arg[] = [GROUP, consumer];
    for (const t of items) args.push(t.id, t.lane, t.entryId, t.attempt);
    const r = (await this.run('heartbeat', this.scripts.heartbeat, args)) as number[];
    return r.map((v) => (v === 0 ? 'ok' : v === 1 ? 'cancelled' : 'lost'));
  }

  async release(consumer: string, _items: readonly TaskRef[], now: number): Promise<void> {
    // The script releases every delivery the consumer holds, not only the ones we know of: a
    // claim whose reply was lost (a timeout) leaves deliveries we never saw.
    await this.run('release', this.scripts.release, [GROUP, consumer, now]);
  }

  async progress(ref: TaskRef, value: number, now: number): Promise<boolean> {
    const r = await this.run('progress', this.scripts.progress, [ref.id, ref.attempt, value, now]);
    return r === 1;
  }

  async openWaiter(): Promise<WorkWaiter> {
    const wakeKey = this.keys[6] as string;
    let client: RedisClient | undefined;
    let closed = false;
    const conn = this.conn;
    return {
      async wait(token: string, maxMs: number): Promise<void> {
        if (closed) return;
        try {
          // A connection of its own: XREAD BLOCK holds it for the whole wait.
          if (!client) {
            const c = await conn.duplicate({ commandTimeout: 0 });
            if (closed) {
              await conn.release(c);
              return;
            }
            client = c;
          }
          const c = client as Redis;
          const read = c
            .xread('COUNT', 1, 'BLOCK', Math.max(1, Math.round(maxMs)), 'STREAMS', wakeKey, token)
            .then(
              () => 'ok' as const,
              () => 'error' as const,
            );
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<'stuck'>((resolve) => {
            timer = setTimeout(() => resolve('stuck'), maxMs + WAIT_GRACE_MS);
          });
          const outcome = await Promise.race([read, late]);
          clearTimeout(timer);
          if (outcome === 'stuck') {
            // A blocking read that outlives its BLOCK time sits on a dead or hung socket (seen
            // after a network partition): drop that connection; the next wait makes a new one.
            client = undefined;
            c.disconnect();
            void conn.release(c);
          } else if (outcome === 'error' && !closed) {
            // Redis away: the caller's next claim reports real errors.
            await new Promise((r) => setTimeout(r, Math.min(maxMs, 200)));
          }
        } catch {
          // No connection (Redis away) or closed under us.
          if (!closed) await new Promise((r) => setTimeout(r, Math.min(maxMs, 200)));
        }
      },
      async notify(): Promise<void> {
        // A wake entry ends the blocked XREAD (and wakes idle workers elsewhere, harmlessly).
        await conn
          .run('worker notify', (c) => c.xadd(wakeKey, 'MAXLEN', '1', '*', 'x', '1'))
          .catch(() => undefined);
      },
      async close(): Promise<void> {
        closed = true;
        // Released, not only disconnected: the connection object forgets it, so workers that
        // start and stop on one queue do not leave a closed client behind each time.
        if (client) {
          const c = client;
          client = undefined;
          c.disconnect();
          await conn.release(c);
        }
      },
    };
  }

  /** Adds a flow in one script (see {@link FlowBackend.submitFlow}). */
  submitFlow(tasks: readonly NewFlowTask[], now: number): Promise<void> {
    const max = Number.isFinite(this.maxQueued) ? this.maxQueued : -1;
    return redisSubmitFlow(this, [now, max, GROUP], tasks, this.maxQueued);
  }

  /** Results of the completed direct children of `id` (see {@link FlowBackend.childResults}). */
  childResults(id: string): Promise<Map<string, string> | null> {
    return redisChildResults(this, id);
  }

  /** A reader of the queue's events stream (see {@link TaskEventSource}). */
  openEventReader(): TaskEventReader {
    return openRedisEventReader(this.conn, this.keys[13] as string, (e, op) =>
      this.mapError(e, op),
    );
  }

  async stats(_now: number): Promise<BackendStats> {
    const r = (await this.run('stats', this.scripts.stats, [GROUP, Date.now()])) as number[];
    const n = (i: number) => Number(r[i] ?? 0);
    return {
      queued: n(0),
      delayed: n(1),
      processing: n(2),
      completed: n(3),
      failed: n(4),
      deadLettered: n(5),
      oldestQueuedAt: n(6) >= 0 ? n(6) : null,
      waitingChildren: n(7),
    };
  }

  async deadLetters(limit: number): Promise<TaskRecord[]> {
    const r = (await this.run('deadLetters', this.scripts.deadLetters, [
      limit,
      Date.now(),
    ])) as Arg[];
    const out: TaskRecord[] = [];
    for (let i = 0; i + 3 < r.length; i += 4) {
      const rec = parseRecord(
        String(r[i]),
        String(r[i + 1]),
        r[i + 2] === 1 ? String(r[i + 3]) : undefined,
      );
      if (rec) out.push(rec);
    }
    return out;
  }

  async redrive(ids: readonly string[] | undefined, now: number): Promise<number> {
    if (ids) {
      let n = 0;
      for (let i = 0; i < ids.length; i += SUBMIT_CHUNK) {
        n += (await this.run('redrive', this.scripts.redrive, [
          now,
          ...ids.slice(i, i + SUBMIT_CHUNK),
        ])) as number;
      }
      return n;
    }
    let total = 0;
    for (let round = 0; round < 1000; round++) {
      const n = (await this.run('redrive', this.scripts.redrive, [now])) as number;
      total += n;
      if (n === 0) break;
    }
    return total;
  }

  async close(): Promise<void> {
    // The connection belongs to the TaskQueue, which closes it.
  }

  listTasks(status: TaskStatus, offset: number, limit: number, now: number): Promise<TaskRecord[]> {
    return A.listTasks((s, a) => this.run('listTasks', s, a), GROUP, status, offset, limit, now);
  }

  clean(status: CleanableStatus, cutoffMs: number, limit: number, now: number): Promise<number> {
    return A.clean((s, a) => this.run('clean', s, a), status, cutoffMs, limit, now, this.ttlMs);
  }

  async obliterate(force: boolean): Promise<number> {
    const r = await A.obliterate((s, a) => this.run('obliterate', s, a), GROUP, force);
    // The stream and its group are gone: the next claim creates them again.
    if (r < 0) this.groupReady = undefined;
    return r;
  }

  async setPaused(paused: boolean): Promise<void> {
    await A.setPaused((s, a) => this.run(paused ? 'pause' : 'resume', s, a), paused);
  }

  isPaused(): Promise<boolean> {
    return A.isPaused((s, a) => this.run('isPaused', s, a));
  }
}

function taskArgs(t: NewTask): Arg[] {
  return [
    t.id,
    t.data,
    t.maxAttempts,
    t.timeout,
    t.priority,
    t.delayMs,
    t.trace ?? '',
    t.name ?? '',
  ];
}
