/**
 * Where a task is in its life (a leaf file: the backend contract, the public types and the admin
 * helpers all import it, and it imports nothing):
 * - `queued`: waiting for a worker;
 * - `delayed`: waiting for its `delay` or for a retry's backoff to pass;
 * - `processing`: a worker runs it now;
 * - `completed`: the handler returned; `result` holds its value;
 * - `failed`: every attempt failed (or the handler threw an `UnrecoverableError`); `error` holds
 *   the last error and the task is in the dead-letter list;
 * - `cancelled`: `TaskQueue.cancelTask` stopped it;
 * - `waiting-children`: a flow's parent waiting for its children (see `TaskQueue.submitFlow`).
 */
export type TaskStatus =
  | 'queued'
  | 'delayed'
  | 'processing'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'waiting-children';

/** Every status, in life order. */
export const TASK_STATUSES: readonly TaskStatus[] = [
  'queued',
  'delayed',
  'processing',
  'completed',
  'failed',
  'cancelled',
  'waiting-children',
];

/** Terminal statuses: a task in one of them never changes again (until a redrive of `failed`). */
export const TERMINAL: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled']);
