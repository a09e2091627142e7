/**
 * The async agent as a flow: a `plan` and a `tool` sub-task run in parallel (on any worker of the
 * fleet), and the agent task itself (the flow's parent) runs once both completed, makes the LLM
 * call and joins their results. The client polls or streams the parent's id.
 */
import type { FlowNode, TaskContext } from '../../src/worker/index.js';

/** Name of the sub-task handler (see the worker's `handlers`). */
export const AGENT_STEP = 'agent-step';
/** The sub-tasks of one agent task, in the order they are reported. */
export const AGENT_STEPS = ['plan', 'tool'] as const;

/** Data of the agent task (the flow's parent). */
export interface AgentTaskData {
  task: string;
  submitted_by: string;
}

/** Data of one sub-task. */
export interface AgentStepData {
  task: string;
  step: (typeof AGENT_STEPS)[number];
}

/** What a sub-task returns. */
export interface AgentStepResult {
  step: string;
  worker: string;
}

/** The flow for one agent task. */
export function agentFlow(data: AgentTaskData): FlowNode<AgentTaskData> {
  return {
    data,
    children: AGENT_STEPS.map((step) => ({
      name: AGENT_STEP,
      data: { task: data.task, step } satisfies AgentStepData,
    })),
  };
}

/** The sub-task handler: simulated tool work of `latencyMs`, aborted with the task. */
export function agentStepHandler(latencyMs: number, worker: string) {
  return async (data: AgentStepData, ctx: TaskContext): Promise<AgentStepResult> => {
    await ctx.progress(0);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, latencyMs);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(ctx.signal.reason ?? new Error('aborted'));
        },
        { once: true },
      );
    });
    await ctx.progress(100);
    return { step: data.step, worker };
  };
}
