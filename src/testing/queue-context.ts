/** What the queue suite's case files are handed. */
import type { BackgroundWorker, BackgroundWorkerOptions, TaskQueue } from '../worker/index.js';
import type { Vitest } from './api.js';

/** @internal What the case files get. */
export interface QueueContext {
  it: (name: string, fn: () => Promise<void>) => void;
  expect: Vitest['expect'];
  /** A TaskQueue on a fresh backend of a fresh queue. */
  queue(options?: { resultTtl?: number }): Promise<TaskQueue>;
  /** A second TaskQueue on the same queue as `q` (a second backend from the factory). */
  handle(q: TaskQueue): Promise<TaskQueue>;
  /** A worker on `q`, stopped after the test. */
  worker<D = unknown, R = unknown>(
    q: TaskQueue,
    opts: Omit<BackgroundWorkerOptions<D, R>, 'queue'>,
  ): BackgroundWorker<D, R>;
}
