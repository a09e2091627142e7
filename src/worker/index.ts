/**
 * azscale/worker: background tasks on Redis Streams (or in memory): `TaskQueue` to submit and
 * look tasks up, `BackgroundWorker` to run them. See docs/worker.md.
 * @packageDocumentation
 */
export { TaskQueue, DEFAULT_RESULT_TTL, DEFAULT_MEMORY_MAX_QUEUED, isTaskQueue } from './queue.js';
export type { StoredError } from './queue.js';
export {
  BackgroundWorker,
  backoffSeconds,
  MAX_VISIBILITY_SECONDS,
  MAX_STOP_SECONDS,
} from './worker.js';
export type { BackgroundWorkerOptions } from './worker-options.js';
export { TaskQueueEvents } from './events.js';
export type {
  QueueEventMap,
  QueueEventBase,
  QueueCompletedEvent,
  QueueFailedEvent,
  QueueProgressEvent,
  QueueEventListenOptions,
} from './events.js';
export { MAX_FLOW_TASKS, MAX_FLOW_DEPTH } from './flows.js';
export type { FlowNode, FlowTree } from './flows.js';
export type { FlowBackend, NewFlowTask } from './flow-backend.js';
export type { TaskEventSource, TaskEventReader, RawTaskEvent } from './event-source.js';
export { MemoryQueueBackend } from './memory-backend.js';
export { MemoryRegistry, defaultMemoryRegistry, isMemoryRegistry } from './memory-registry.js';
export { TASK_STATUSES } from './task-status.js';
export type { MemoryQueueBackendOptions } from './memory-backend.js';
export { RedisQueueBackend } from './redis-backend.js';
export type { RedisQueueBackendOptions } from './redis-backend.js';
export { MAX_PRIORITY, isQueueBackend } from './backend.js';
export { hasAdmin as isQueueAdminBackend } from './admin.js';
export { hasFlows as isFlowBackend } from './flow-backend.js';
export { hasEventSource as isTaskEventSource } from './event-source.js';
export { MAX_SCHEDULE_ID_LENGTH, MIN_EVERY_SECONDS, tickTaskId } from './schedule.js';
export type { ScheduleOptions, ScheduleInfo } from './schedule.js';
export { MAX_LIST_LIMIT, MAX_TASK_NAME_LENGTH, DEFAULT_EVENTS_MAX_LEN } from './admin.js';
export type {
  QueueRateLimit,
  QueueEventsOptions,
  ListTasksOptions,
  CleanTasksOptions,
  CleanableStatus,
  ObliterateOptions,
  QueueAdminBackend,
  BackendRateLimit as QueueBackendRateLimit,
} from './admin.js';
export type {
  QueueBackend,
  WorkWaiter as QueueWorkWaiter,
  TaskRecord,
  NewTask,
  TaskRef,
  ClaimedTask,
  Completion as TaskCompletion,
  Failure as TaskFailure,
  ClaimRequest as TaskClaimRequest,
  ClaimResult as TaskClaimResult,
  CancelOutcome as TaskCancelOutcome,
  FailOutcome as TaskFailOutcome,
  HeartbeatOutcome as TaskHeartbeatOutcome,
  BackendStats as QueueBackendStats,
} from './backend.js';
export type {
  TaskStatus,
  TaskInfo,
  SubmitTaskOptions,
  SubmitTasksOptions,
  WaitForResultOptions,
  TaskQueueStats,
  TaskQueueOptions,
  TaskBackoffOptions,
  TaskContext,
  TaskHandler,
  TaskCompletedEvent,
  TaskFailedEvent,
  WorkerEventMap,
  WorkerStopOptions,
} from './types.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/worker'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  CancelledError,
  ChildTaskFailedError,
  ClosedError,
  NotFoundError,
  SerializationError,
  TaskFailedError,
  TimeoutError,
  UnrecoverableError,
  UnknownTaskNameError,
  isUnknownTaskNameError,
  ValidationError,
  ValueTooLargeError,
} from '../core/errors.js';
