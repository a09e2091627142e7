import { replyErrorAsUnavailable } from '../core/backend-errors.js';
import type { RedisConnection } from '../core/connection.js';
import { hashTag } from '../core/keys.js';
import { LuaScript } from '../core/lua-script.js';
import { LUA } from './lua/index.js';
import type { DueResult, PendingTick, ScheduleStore, StoredSchedule } from './schedule-store.js';

// Scripts: lua/schedule-*.lua. KEYS of every script: 1 definitions (hash id -> JSON), 2 next runs (zset id -> ms),
// 3 timing keys (hash id -> string), 4 pending ticks (hash "id\ntick" -> definition JSON).
// All carry the queue's hash tag, so on a Cluster they share the slot of the queue's own keys.

const SCRIPTS = {
  upsert: new LuaScript(LUA['schedule-upsert'], 'schedule upsert'),
  remove: new LuaScript(LUA['schedule-remove'], 'schedule remove'),
  list: new LuaScript(LUA['schedule-list'], 'schedule list'),
  due: new LuaScript(LUA['schedule-due'], 'schedule due'),
  advance: new LuaScript(LUA['schedule-advance'], 'schedule advance'),
  done: new LuaScript(LUA['schedule-done'], 'schedule done'),
  clear: new LuaScript(LUA['schedule-clear'], 'schedule clear'),
};

/** The Redis store of a queue's schedules (standalone or Cluster). @internal */
export class RedisScheduleStore implements ScheduleStore {
  private readonly keys: string[];

  constructor(
    private readonly conn: RedisConnection,
    prefix: string,
    queueName: string,
  ) {
    const base = `${prefix}${hashTag(queueName)}`;
    this.keys = ['sd', 'sn', 'st', 'sp'].map((k) => `${base}:${k}`);
  }

  /** Every key the store uses (for tests and operators). */
  get scheduleKeys(): readonly string[] {
    return this.keys;
  }

  private async run(op: string, script: LuaScript, args: (string | number)[]): Promise<unknown> {
    try {
      return await script.run(await this.conn.get(), this.keys, args);
    } catch (e) {
      throw replyErrorAsUnavailable(this.conn.mapError(e, `worker ${op}`));
    }
  }

  async upsert(
    id: string,
    def: string,
    timing: string,
    next: number | null,
  ): Promise<number | null> {
    const r = (await this.run('schedule', SCRIPTS.upsert, [id, def, timing, next ?? ''])) as string;
    return r === '' ? null : Number(r);
  }

  async remove(id: string): Promise<boolean> {
    return ((await this.run('unschedule', SCRIPTS.remove, [id])) as number) > 0;
  }

  async list(): Promise<StoredSchedule[]> {
    const r = (await this.run('schedules', SCRIPTS.list, [])) as string[];
    const out: StoredSchedule[] = [];
    for (let i = 0; i < r.length; i += 3) {
      const next = r[i + 2] as string;
      out.push({
        id: r[i] as string,
        def: r[i + 1] as string,
        next: next === '' ? null : Number(next),
      });
    }
    return out;
  }

  async due(now: number, limit: number): Promise<DueResult> {
    const [first, due, pending] = (await this.run('schedule due', SCRIPTS.due, [now, limit])) as [
      string,
      string[],
      string[],
    ];
    const out: DueResult = { due: [], pending: [], earliest: first === '' ? null : Number(first) };
    for (let i = 0; i < due.length; i += 3) {
      out.due.push({ id: due[i] as string, next: Number(due[i + 1]), def: due[i + 2] as string });
    }
    for (let i = 0; i < pending.length; i += 2) {
      const field = pending[i] as string;
      const nl = field.lastIndexOf('\n');
      const p: PendingTick = {
        id: field.slice(0, nl),
        tick: Number(field.slice(nl + 1)),
        def: pending[i + 1] as string,
      };
      out.pending.push(p);
    }
    return out;
  }

  async advance(
    id: string,
    expectNext: number,
    expectDef: string,
    next: number | null,
    fire: readonly number[],
  ): Promise<boolean> {
    const args = [id, expectNext, expectDef, next ?? '', ...fire];
    return ((await this.run('schedule advance', SCRIPTS.advance, args)) as number) === 1;
  }

  async donePending(id: string, tick: number): Promise<void> {
    await this.run('schedule done', SCRIPTS.done, [`${id}\n${tick}`]);
  }

  async clear(): Promise<void> {
    await this.run('obliterate schedules', SCRIPTS.clear, []);
  }
}
