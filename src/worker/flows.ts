import { randomUUID } from 'node:crypto';
import { ValidationError, describeValue } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { assertObject } from '../core/validate.js';
import type { NewTask } from './backend.js';
import type { NewFlowTask } from './flow-backend.js';
import type { SubmitTaskOptions } from './types.js';

/** One task of a flow: its data, its options and the tasks that must complete before it runs. */
export interface FlowNode<D = unknown> {
  /** The task data (JSON-encodable). @default null */
  data?: D;
  /** The task name (selects the worker's handler for it, see `handlers`). */
  name?: string;
  /** Tasks that must all complete before this one runs; each may have children of its own. */
  children?: FlowNode[];
  /**
   * What a child that fails for good (ends in the dead-letter list) or is cancelled does to
   * this task: `fail` dead-letters it with a `ChildTaskFailedError` naming the child; `ignore`
   * lets it run once the other children completed (the failed child is left out of
   * `ctx.childResults()`). On a task without children it applies to the task itself: its
   * failure is ignored by its parent.
   * @default 'fail'
   */
  onChildFailure?: 'fail' | 'ignore';
  /** The task's id. Ids must be new: a flow with an id that exists is refused whole (ConflictError). @default a random UUID */
  taskId?: string;
  /** Attempts before the task fails for good. @default the worker's `attempts` */
  attempts?: number;
  /** Seconds one attempt may run. @default the worker's `timeout` */
  timeout?: number;
  /** 0 to 1048576; higher starts first once runnable. @default 0 */
  priority?: number;
  /** Seconds before the task may start; only for a task without children. @default 0 */
  delay?: number;
}

/** What {@link TaskQueue.submitFlow} resolves to: the tree of task ids. */
export interface FlowTree {
  /** The task id of this node. */
  id: string;
  /** The trees of the node's children, in the order given. */
  children: FlowTree[];
}

/** Most tasks in one flow. */
export const MAX_FLOW_TASKS = 10_000;
/** Deepest nesting of a flow (the root is depth 1). */
export const MAX_FLOW_DEPTH = 50;

const NODE_KEYS = new Set([
  'data',
  'name',
  'children',
  'onChildFailure',
  'taskId',
  'attempts',
  'timeout',
  'priority',
  'delay',
]);

/**
 * Validates a flow and flattens it, parents before children, with the tree of ids to return.
 * `build` turns data and options into a task (the queue's own validation).
 */
export function flattenFlow(
  root: unknown,
  build: (id: string, data: unknown, o: SubmitTaskOptions, what: string) => NewTask,
): { tasks: NewFlowTask[]; tree: FlowTree } {
  const tasks: NewFlowTask[] = [];
  const ids = new Set<string>();
  const visit = (
    node: unknown,
    path: string,
    depth: number,
    parent: string | undefined,
    parentIgnores: boolean,
  ): FlowTree => {
    assertObject(node, path);
    const n = node as FlowNode;
    for (const k of Object.keys(n)) {
      if (!NODE_KEYS.has(k)) {
        throw new ValidationError(`${path}.${k} is not a flow option`, { option: `${path}.${k}` });
      }
    }
    if (depth > MAX_FLOW_DEPTH) {
      throw new ValidationError(`${path} nests deeper than ${MAX_FLOW_DEPTH} levels`, {
        option: path,
      });
    }
    if (tasks.length >= MAX_FLOW_TASKS) {
      throw new ValidationError(`the flow holds more than ${MAX_FLOW_TASKS} tasks`, {
        option: 'flow',
      });
    }
    const kids = n.children ?? [];
    if (!Array.isArray(kids)) {
      throw new ValidationError(
        `${path}.children must be an array, received ${describeValue(kids)}`,
        { option: `${path}.children` },
      );
    }
    const ocf = n.onChildFailure ?? 'fail';
    if (ocf !== 'fail' && ocf !== 'ignore') {
      throw new ValidationError(
        `${path}.onChildFailure must be 'fail' or 'ignore', received ${describeValue(ocf)}`,
        { option: `${path}.onChildFailure` },
      );
    }
    if (kids.length > 0 && n.delay !== undefined && n.delay !== 0) {
      throw new ValidationError(
        `${path}.delay is for tasks without children (a parent starts when they complete)`,
        { option: `${path}.delay` },
      );
    }
    const name = n.name === undefined ? '' : validateId(n.name, `${path}.name`);
    const id = n.taskId === undefined ? randomUUID() : validateId(n.taskId, `${path}.taskId`);
    if (ids.has(id)) {
      throw new ValidationError(`${path}.taskId ${id} appears twice in the flow`, {
        option: `${path}.taskId`,
      });
    }
    ids.add(id);
    const task = build(
      id,
      n.data === undefined ? null : n.data,
      { attempts: n.attempts, timeout: n.timeout, priority: n.priority, delay: n.delay },
      `${path}.data`,
    );
    const ignoreFailure = parentIgnores || (kids.length === 0 && ocf === 'ignore');
    tasks.push({ ...task, parent, children: kids.length, ignoreFailure, name });
    const children = kids.map((k, i) =>
      visit(k, `${path}.children[${i}]`, depth + 1, id, ocf === 'ignore'),
    );
    return { id, children };
  };
  const tree = visit(root, 'flow', 1, undefined, false);
  return { tasks, tree };
}
