/**
 * The LLM cache warm-up: a schedule on the task queue re-asks the configured first messages, so a
 * new conversation that opens with one of them is answered from the cache. Every instance
 * upserts the same schedule at start-up (its ticks do not move: same timing), and every running
 * worker takes part in firing it; each tick still runs once across the fleet.
 */
import type { TaskQueue } from '../../src/worker/index.js';
import type { AgentServiceConfig } from './config.js';

/** The schedule's id; its tasks have ids `schedule:warm-llm-cache:<tick ms>`. */
export const WARMUP_SCHEDULE = 'warm-llm-cache';
/** The task name of a warm-up (the worker's `handlers[WARMUP_TASK]` runs it). */
export const WARMUP_TASK = 'warm-llm-cache';

/** The data of a warm-up task. */
export interface WarmupTaskData {
  warmup: true;
}

/** What a warm-up task returns. */
export interface WarmupResult {
  /** Prompts asked. */
  prompts: number;
  /** Of them, answers that were already in the cache. */
  cached: number;
}

/**
 * Upserts the warm-up schedule when prompts are configured, removes it when not (a redeploy
 * without prompts stops it for the whole fleet).
 */
export async function registerWarmup(queue: TaskQueue, config: AgentServiceConfig): Promise<void> {
  if (config.warmupPrompts.length === 0) {
    await queue.unschedule(WARMUP_SCHEDULE);
    return;
  }
  await queue.schedule(WARMUP_SCHEDULE, {
    every: config.warmupEvery,
    name: WARMUP_TASK,
    data: { warmup: true } satisfies WarmupTaskData,
    attempts: 1,
  });
}

/** Runs one warm-up: asks every prompt through `ask` (the cached LLM pipeline). */
export async function runWarmup(
  prompts: readonly string[],
  ask: (prompt: string) => Promise<{ cached: boolean }>,
): Promise<WarmupResult> {
  let cached = 0;
  for (const p of prompts) if ((await ask(p)).cached) cached++;
  return { prompts: prompts.length, cached };
}
