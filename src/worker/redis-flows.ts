import { ConflictError } from '../core/errors.js';
import { LuaScript } from '../core/lua-script.js';
import type { NewFlowTask } from './flow-backend.js';
import { queueFullError } from './queue-full.js';

/** What the flow functions need of the Redis backend (an interface, not an import of it). */
export interface QueueScriptRunner {
  readonly queueName: string;
  run(op: string, script: LuaScript, args: readonly (string | number)[]): Promise<unknown>;
}
import { CHILD_RESULTS, SUBMIT_FLOW } from './redis-scripts.js';

const submitFlowScript = new LuaScript(SUBMIT_FLOW);
const childResultsScript = new LuaScript(CHILD_RESULTS);

/** Adds a whole flow with one script call (see redis-flow-scripts.ts). */
export async function redisSubmitFlow(
  b: QueueScriptRunner,
  head: (string | number)[],
  tasks: readonly NewFlowTask[],
  maxQueued: number,
): Promise<void> {
  const args = head.slice();
  for (const t of tasks) {
    args.push(
      t.id,
      t.data,
      t.maxAttempts,
      t.timeout,
      t.priority,
      t.delayMs,
      t.trace ?? '',
      t.parent ?? '',
      t.children,
      t.ignoreFailure ? 1 : 0,
      t.name,
    );
  }
  const r = (await b.run('submitFlow', submitFlowScript, args)) as (string | number)[];
  if (r[0] === -1) {
    throw queueFullError(b.queueName, maxQueued, Number(r[1]), tasks.length);
  }
  if (r[0] === -2) {
    throw new ConflictError(`task ${String(r[1])} already exists in queue ${b.queueName}`, {
      context: { taskId: String(r[1]), queue: b.queueName },
    });
  }
}

/** Results of the completed direct children of `id`; null for an unknown task. */
export async function redisChildResults(
  b: QueueScriptRunner,
  id: string,
): Promise<Map<string, string> | null> {
  const r = (await b.run('childResults', childResultsScript, [id, Date.now()])) as (
    | string
    | number
  )[];
  if (r[0] !== 1) return null;
  const out = new Map<string, string>();
  for (let i = 1; i + 1 < r.length; i += 2) out.set(String(r[i]), String(r[i + 1]));
  return out;
}
