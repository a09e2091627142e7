import { replyErrorAsUnavailable } from '../core/backend-errors.js';
import type { RedisConnection } from '../core/connection.js';
import { hashTag } from '../core/keys.js';
import { LuaScript } from '../core/lua-script.js';
import type { DueResult, PendingTick, ScheduleStore, StoredSchedule } from './schedule-store.js';

// KEYS of every script: 1 definitions (hash id -> JSON), 2 next runs (zset id -> ms),
// 3 timing keys (hash id -> string), 4 pending ticks (hash "id\ntick" -> definition JSON).
// All carry the queue's hash tag, so on a Cluster they share the slot of the queue's own keys.

const UPSERT = `
local old = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if old ~= ARGV[3] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
  else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
end
return redis.call('ZSCORE', KEYS[2], ARGV[1]) or ''
`;

const REMOVE = `
local had = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return had
`;

const LIST = `
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  out[#out + 1] = all[i]
  out[#out + 1] = all[i + 1]
  out[#out + 1] = redis.call('ZSCORE', KEYS[2], all[i]) or ''
end
return out
`;

// Returns { earliest or '', { id, next, def, ... }, { field, def, ... } }.
const DUE = `
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local due = {}
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[2]))
for i = 1, #ids, 2 do
  local def = redis.call('HGET', KEYS[1], ids[i])
  if def then
    due[#due + 1] = ids[i]
    due[#due + 1] = ids[i + 1]
    due[#due + 1] = def
  end
end
local pending = redis.call('HSCAN', KEYS[4], 0, 'COUNT', tonumber(ARGV[2]))[2]
return { first[2] or '', due, pending }
`;

const ADVANCE = `
local cur = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
for i = 5, #ARGV do redis.call('HSET', KEYS[4], ARGV[1] .. '\\n' .. ARGV[i], ARGV[3]) end
return 1
`;

const DONE = `return redis.call('HDEL', KEYS[4], ARGV[1])`;

const CLEAR = `return redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])`;

const SCRIPTS = {
  upsert: new LuaScript(UPSERT, 'schedule upsert'),
  remove: new LuaScript(REMOVE, 'schedule remove'),
  list: new LuaScript(LIST, 'schedule list'),
  due: new LuaScript(DUE, 'schedule due'),
  advance: new LuaScript(ADVANCE, 'schedule advance'),
  done: new LuaScript(DONE, 'schedule done'),
  clear: new LuaScript(CLEAR, 'schedule clear'),
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
