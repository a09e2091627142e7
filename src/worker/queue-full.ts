import { LimitExceededError } from '../core/errors.js';

/** The error a submit gets when the queue already holds `maxQueued` waiting tasks. */
export function queueFullError(
  queue: string,
  maxQueued: number,
  waiting: number,
  adding: number,
): LimitExceededError {
  return new LimitExceededError(
    `task queue ${queue} is full: ${waiting} tasks wait, ${adding} more would pass maxQueued (${maxQueued})`,
    { context: { queue, maxQueued, waiting, adding } },
  );
}
