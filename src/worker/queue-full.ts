import { LimitExceededError } from '../core/errors.js';

/** The error a submit gets when the queue already holds `maxQueued` waiting tasks. */
export function queueFullError(
  queue: string,
  maxQueued: number,
  waiting: number,
  adding: number,
  created = 0,
): LimitExceededError {
  const before =
    created > 0 ? ` (${created} tasks of this call were added before the bound was hit)` : '';
  return new LimitExceededError(
    `task queue ${queue} is full: ${waiting} tasks wait, ${adding} more would pass maxQueued (${maxQueued})${before}`,
    { context: { queue, maxQueued, waiting, adding, created } },
  );
}
