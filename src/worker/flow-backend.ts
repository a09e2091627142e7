import type { NewTask } from './backend.js';

/** One task of a flow as handed to the backend, parents before their children. */
export interface NewFlowTask extends NewTask {
  /** The parent's id; undefined for the root. */
  parent: string | undefined;
  /** Number of direct children; a task with children waits for them (`waiting-children`). */
  children: number;
  /** The parent goes on when this task fails for good or is cancelled (instead of failing). */
  ignoreFailure: boolean;
  /** The task name ('' for none). */
  name: string;
}

/** The optional backend capability behind {@link TaskQueue.submitFlow}. */
export interface FlowBackend {
  /**
   * Adds every task of a flow at once: none runs before the whole flow is stored, and a parent
   * only once its children finished.
   * @throws LimitExceededError past `maxQueued`, ConflictError when an id exists (nothing written).
   */
  submitFlow(tasks: readonly NewFlowTask[], now: number): Promise<void>;
  /** Result (JSON) of each completed direct child of `id`; null for an unknown task. */
  childResults(id: string): Promise<Map<string, string> | null>;
}

/** True when `b` runs flows. */
export function hasFlows(b: unknown): b is FlowBackend {
  return typeof (b as Partial<FlowBackend> | null)?.submitFlow === 'function';
}

/** The stored error of a parent failed by its child (name, code, the child's id). */
export function childFailedError(child: string, why: string): string {
  return JSON.stringify({
    name: 'ChildTaskFailedError',
    code: 'AZS_CHILD_TASK_FAILED',
    child,
    message: `child task ${child} ${why}`,
  });
}
