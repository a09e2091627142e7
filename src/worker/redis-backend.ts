import type { Redis } from 'ioredis';
import type { RedisClient, RedisConnection } from '../core/connection.js';
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
import * as L from './redis-scripts.js';
import type { TaskStatus } from './types.js';

type Arg = string | number;

const SCRIPTS = {
  submit: new LuaScript(L.SUBMIT),
  claim: new LuaScript(L.CLAIM),
  complete: new LuaScript(L.COMPLETE),
  fail: new LuaScript(L.FAIL),
  heartbeat: new LuaScript(L.HEARTBEAT),
  release: new LuaScript(L.RELEASE),
  progress: new LuaScript(L.PROGRESS),
  cancel: new LuaScript(L.CANCEL),
  redrive: new LuaScript(L.REDRIVE),
  stats: new LuaScript(L.STATS),
};

const GROUP = 'workers';
const INFO_FIELDS = ['st', 'r', 'er', 'pg', 'a', 'ma', 'to', 'pr', 'c', 'u'] as const;
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
}

/**
 * The Redis backend: one stream per queue (plus one for the priority lane) read by a consumer
 * group, one hash per task, sorted sets for delayed tasks, priorities and dead letters. Every key
 * of a queue shares the hash tag `{name}`, so all of a queue's scripts run on one Cluster slot.
 */
export class RedisQueueBackend implements QueueBackend {
  readonly kind = 'redis';
  private readonly conn: RedisConnection;
  private readonly keys: string[];
  private readonly tp: string;
  private readonly ttlMs: number;
  private groupReady: Promise<void> | undefined;

  constructor(conn: RedisConnection, options: RedisQueueBackendOptions) {
    this.conn = conn;
    const base = `${options.prefix}${hashTag(options.name)}`;
    this.keys = ['s', 'h', 'd', 'p', 'x', 'm', 'w'].map((k) => `${base}:${k}`);
    this.tp = `${base}:t:`;
    this.ttlMs = Math.max(1, Math.round(options.resultTtl * 1000));
  }

  /** The key of a task's hash (for tests and tooling). */
  taskKey(id: string): string {
    return this.tp + id;
  }

  /** Every fixed key of the queue (streams, sets, meta). */
  get queueKeys(): readonly string[] {
    return this.keys;
  }

  private async run(
    op: string,
    script: LuaScript,
    args: readonly Arg[],
    client?: RedisClient,
  ): Promise<unknown> {
    try {
      return await script.run(client ?? (await this.conn.get()), this.keys, args);
    } catch (e) {
      throw this.conn.mapError(e, `worker ${op}`);
    }
  }

  private ensureGroup(): Promise<void> {
    this.groupReady ??= this.conn
      .run('worker group create', async (client) => {
        for (const key of [this.keys[0], this.keys[1]] as string[]) {
          try {
            await client.xgroup('CREATE', key, GROUP, '0', 'MKSTREAM');
          } catch (e) {
            if (!(e instanceof Error && e.message.startsWith('BUSYGROUP'))) throw e;
          }
        }
      })
      .catch((e) => {
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
    // Chunks go out together: one connection runs them in order, so ids keep their order and
    // the round trips overlap.
    const calls: Promise<unknown>[] = [];
    let client: RedisClient;
    try {
      client = await this.conn.get();
    } catch (e) {
      throw this.conn.mapError(e, 'worker submit');
    }
    if (tasks.length === 1) {
      const t = tasks[0] as NewTask;
      const r = (await this.run(
        'submit',
        SCRIPTS.submit,
        [
          this.tp,
          now,
          t.id,
          t.data,
          t.maxAttempts,
          t.timeout,
          t.priority,
          t.delayMs,
          t.trace ?? '',
        ],
        client,
      )) as number[];
      return [r[0] === 1];
    }
    for (let i = 0; i < tasks.length; i += SUBMIT_CHUNK) {
      const args: Arg[] = [this.tp, now];
      const end = Math.min(tasks.length, i + SUBMIT_CHUNK);
      for (let j = i; j < end; j++) {
        const t = tasks[j] as NewTask;
        args.push(t.id, t.data, t.maxAttempts, t.timeout, t.priority, t.delayMs, t.trace ?? '');
      }
      calls.push(this.run('submit', SCRIPTS.submit, args, client));
    }
    const out: boolean[] = [];
    for (const r of (await Promise.all(calls)) as number[][]) for (const v of r) out.push(v === 1);
    return out;
  }

  async get(id: string): Promise<TaskRecord | null> {
    // Every field but the data, which may be large and is not part of what getTask shows.
    const v = await this.conn.run('worker getTask', (c) => c.hmget(this.tp + id, ...INFO_FIELDS));
    const h: Record<string, string> = {};
    INFO_FIELDS.forEach((f, i) => {
      const x = v[i];
      if (x !== null && x !== undefined) h[f] = x;
    });
    return parseRecord(id, h);
  }

  async cancel(id: string, now: number): Promise<CancelOutcome> {
    const r = (await this.run('cancelTask', SCRIPTS.cancel, [
      this.tp,
      id,
      now,
      this.ttlMs,
    ])) as number;
    return r === -1 ? 'missing' : r === 0 ? 'terminal' : r === 2 ? 'running' : 'cancelled';
  }

  async claim(req: ClaimRequest): Promise<ClaimResult> {
    const comps = req.completions ?? [];
    const args: Arg[] = [
      this.tp,
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
    const r = (await this.withGroup(() => this.run('claim', SCRIPTS.claim, args))) as Arg[];
    const tasks: ClaimedTask[] = [];
    for (let i = 2; i + 7 < r.length; i += 8) {
      const trace = String(r[i + 7]);
      tasks.push({
        lane: Number(r[i]),
        entryId: String(r[i + 1]),
        id: String(r[i + 2]),
        data: String(r[i + 3]),
        attempt: Number(r[i + 4]),
        maxAttempts: Number(r[i + 5]),
        timeout: Number(r[i + 6]),
        ...(trace ? { trace } : {}),
      });
    }
    const due = Number(r[0]);
    return { tasks, nextDueAt: due >= 0 ? due : null, token: String(r[1]) };
  }

  async complete(items: readonly Completion[], now: number): Promise<void> {
    if (items.length === 0) return;
    const args: Arg[] = [this.tp, GROUP, now, this.ttlMs];
    for (const c of items) args.push(c.id, c.lane, c.entryId, c.result);
    await this.run('complete', SCRIPTS.complete, args);
  }

  async fail(items: readonly Failure[], now: number): Promise<FailOutcome[]> {
    if (items.length === 0) return [];
    const args: Arg[] = [this.tp, GROUP, now, this.ttlMs];
    for (const f of items) {
      args.push(f.id, f.lane, f.entryId, f.attempt, f.error, f.retryAt === null ? -1 : f.retryAt);
    }
    const r = (await this.run('fail', SCRIPTS.fail, args)) as number[];
    return r.map((v) => (v === 1 ? 'retry' : v === 2 ? 'dead' : 'ignored'));
  }

  async heartbeat(
    consumer: string,
    items: readonly TaskRef[],
    _now: number,
  ): Promise<HeartbeatOutcome[]> {
    if (items.length === 0) return [];
    const args: Arg[] = [this.tp, GROUP, consumer];
    for (const t of items) args.push(t.id, t.lane, t.entryId, t.attempt);
    const r = (await this.run('heartbeat', SCRIPTS.heartbeat, args)) as number[];
    return r.map((v) => (v === 0 ? 'ok' : v === 1 ? 'cancelled' : 'lost'));
  }

  async release(consumer: string, _items: readonly TaskRef[], now: number): Promise<void> {
    // The script releases every delivery the consumer holds, not only the ones we know of: a
    // claim whose reply was lost (a timeout) leaves deliveries we never saw.
    await this.run('release', SCRIPTS.release, [this.tp, GROUP, consumer, now]);
  }

  async progress(ref: TaskRef, value: number, now: number): Promise<boolean> {
    const r = await this.run('progress', SCRIPTS.progress, [
      this.tp,
      ref.id,
      ref.attempt,
      value,
      now,
    ]);
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
          client ??= await conn.duplicate({ commandTimeout: 0 });
          if (closed) return;
          await (client as Redis).xread(
            'COUNT',
            1,
            'BLOCK',
            Math.max(1, Math.round(maxMs)),
            'STREAMS',
            wakeKey,
            token,
          );
        } catch {
          // Closed under us, or Redis away: the caller's next claim reports real errors.
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
        client?.disconnect();
      },
    };
  }

  async stats(_now: number): Promise<BackendStats> {
    const r = (await this.run('stats', SCRIPTS.stats, [GROUP])) as number[];
    const n = (i: number) => Number(r[i] ?? 0);
    return {
      queued: n(0),
      delayed: n(1),
      processing: n(2),
      completed: n(3),
      failed: n(4),
      deadLettered: n(5),
      oldestQueuedAt: n(6) >= 0 ? n(6) : null,
    };
  }

  async deadLetters(limit: number): Promise<TaskRecord[]> {
    const dl = this.keys[4] as string;
    return this.conn.run('worker deadLetters', async (c) => {
      const ids = await c.zrange(dl, 0, String(limit - 1));
      if (ids.length === 0) return [];
      const p = c.pipeline();
      for (const id of ids) p.hmget(this.tp + id, ...INFO_FIELDS);
      const res = (await p.exec()) ?? [];
      const out: TaskRecord[] = [];
      const gone: string[] = [];
      ids.forEach((id, i) => {
        const v = (res[i]?.[1] ?? []) as (string | null)[];
        const h: Record<string, string> = {};
        INFO_FIELDS.forEach((f, j) => {
          const x = v[j];
          if (x !== null && x !== undefined) h[f] = x;
        });
        const rec = parseRecord(id, h);
        if (rec) out.push(rec);
        else gone.push(id);
      });
      if (gone.length > 0) await c.zrem(dl, ...gone);
      return out;
    });
  }

  async redrive(ids: readonly string[] | undefined, now: number): Promise<number> {
    if (ids) {
      let n = 0;
      for (let i = 0; i < ids.length; i += SUBMIT_CHUNK) {
        n += (await this.run('redrive', SCRIPTS.redrive, [
          this.tp,
          now,
          ...ids.slice(i, i + SUBMIT_CHUNK),
        ])) as number;
      }
      return n;
    }
    let total = 0;
    for (let round = 0; round < 1000; round++) {
      const n = (await this.run('redrive', SCRIPTS.redrive, [this.tp, now])) as number;
      total += n;
      if (n === 0) break;
    }
    return total;
  }

  async close(): Promise<void> {
    // The connection belongs to the TaskQueue, which closes it.
  }
}

const STATUSES = new Set<TaskStatus>([
  'queued',
  'delayed',
  'processing',
  'completed',
  'failed',
  'cancelled',
]);

function parseRecord(id: string, h: Record<string, string> | undefined | null): TaskRecord | null {
  if (!h || h.st === undefined || !STATUSES.has(h.st as TaskStatus)) return null;
  const r: TaskRecord = {
    id,
    status: h.st as TaskStatus,
    attempts: Number(h.a ?? 0),
    maxAttempts: Number(h.ma ?? 0),
    timeout: Number(h.to ?? 0),
    priority: Number(h.pr ?? 0),
    createdAt: Number(h.c ?? 0),
    updatedAt: Number(h.u ?? 0),
  };
  if (h.d !== undefined) r.data = h.d;
  if (h.r !== undefined) r.result = h.r;
  if (h.er !== undefined) r.error = h.er;
  if (h.pg !== undefined) r.progress = Number(h.pg);
  return r;
}
