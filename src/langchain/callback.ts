/**
 * `AzscaleCallbackHandler`: LangChain callbacks that hold a model to a `CostOptimizer` budget.
 * Before each LLM/chat-model run it checks the fleet's spend for the hour and refuses the run
 * (BudgetExceededError) when it is used up; after the run it prices the reported token usage and
 * records it.
 */
import type { BaseCallbackHandler as LangChainCallbackHandler } from '@langchain/core/callbacks/base';
import type { LLMResult } from '@langchain/core/outputs';
import { ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { tokenCount } from '../llm/count.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import { loadLangChain } from './load.js';

const base = loadLangChain<{ BaseCallbackHandler: typeof LangChainCallbackHandler }>(
  'callbacks/base',
);

/** Options of {@link AzscaleCallbackHandler}. */
export interface AzscaleCallbackHandlerOptions {
  /** The budget and the price table. */
  optimizer: CostOptimizer;
  /**
   * The model name to price with. @default the run's `invocation_params.model` (or
   * `ls_model_name`)
   */
  model?: string;
  /** Spend category. @default 'llm' */
  category?: string;
}

/** Events of an {@link AzscaleCallbackHandler}. */
export type AzscaleCallbackHandlerEvents = {
  /** A run's usage was priced and recorded. */
  spend: (info: {
    model: string;
    inputTokens: number;
    outputTokens: number;
    dollars: number;
  }) => void;
  /** Recording failed (e.g. a model with no price); the run itself went on. */
  error: (error: unknown) => void;
};

interface TokenCounts {
  input: number;
  output: number;
  cached: number;
}

function num(v: unknown): number {
  return tokenCount(v) ?? 0;
}

/** Token usage of a LangChain result: `llmOutput.tokenUsage`, else the messages' usage_metadata. */
export function usageOfLLMResult(output: LLMResult): TokenCounts | undefined {
  const tu = (output.llmOutput as { tokenUsage?: Record<string, unknown> } | undefined)?.tokenUsage;
  if (tu && (tu.promptTokens !== undefined || tu.completionTokens !== undefined)) {
    return { input: num(tu.promptTokens), output: num(tu.completionTokens), cached: 0 };
  }
  let found = false;
  const sum: TokenCounts = { input: 0, output: 0, cached: 0 };
  for (const list of output.generations ?? []) {
    for (const g of list) {
      const um = (g as { message?: { usage_metadata?: Record<string, unknown> } }).message
        ?.usage_metadata;
      if (!um) continue;
      found = true;
      sum.input += num(um.input_tokens);
      sum.output += num(um.output_tokens);
      sum.cached += num(
        (um.input_token_details as Record<string, unknown> | undefined)?.cache_read,
      );
    }
  }
  return found ? sum : undefined;
}

/**
 * A LangChain callback handler that enforces a `CostOptimizer`'s hourly budget fleet-wide and
 * records each run's token spend. Pass it in `callbacks` of a chat model or an invocation; it
 * sets `raiseError` and `awaitHandlers`, so a refusal stops the run before the provider is
 * called. LangChain runs the start callbacks before its cache lookup: once the budget is spent,
 * cached answers are refused too.
 *
 * @example
 * const model = new ChatOpenAI({ model: 'gpt-4o-mini', callbacks: [new AzscaleCallbackHandler({ optimizer })] });
 */
export class AzscaleCallbackHandler extends base.BaseCallbackHandler {
  /** The handler's name in LangChain's callback manager. */
  name = 'azscale';
  private readonly optimizer: CostOptimizer;
  private readonly model: string | undefined;
  private readonly category: string | undefined;
  private readonly runs = new Map<string, string | undefined>();
  private readonly events = new Emitter<AzscaleCallbackHandlerEvents>();

  constructor(options: AzscaleCallbackHandlerOptions) {
    super({ raiseError: true });
    if (typeof options !== 'object' || options === null) {
      throw new ValidationError(`options must be an object, received ${describeValue(options)}`, {
        option: 'options',
      });
    }
    const o = options.optimizer as unknown;
    if (
      typeof o !== 'object' ||
      o === null ||
      typeof (o as CostOptimizer).recordLLMUsage !== 'function'
    ) {
      throw new ValidationError(`optimizer must be a CostOptimizer, received ${describeValue(o)}`, {
        option: 'optimizer',
      });
    }
    if (
      options.model !== undefined &&
      (typeof options.model !== 'string' || options.model === '')
    ) {
      throw new ValidationError(
        `model must be a non-empty string, received ${describeValue(options.model)}`,
        {
          option: 'model',
        },
      );
    }
    this.optimizer = options.optimizer;
    this.model = options.model;
    this.category = options.category;
    this.raiseError = true;
    this.awaitHandlers = true;
  }

  /** Adds an event listener; returns a disposer. */
  on<K extends keyof AzscaleCallbackHandlerEvents>(
    event: K,
    listener: AzscaleCallbackHandlerEvents[K],
  ): Disposer {
    return this.events.on(event, listener);
  }

  private async start(
    runId: string,
    extraParams?: Record<string, unknown>,
    metadata?: Record<string, unknown>,
  ) {
    const inv = extraParams?.invocation_params as Record<string, unknown> | undefined;
    const model =
      this.model ??
      (typeof inv?.model === 'string' ? inv.model : undefined) ??
      (typeof inv?.model_name === 'string' ? inv.model_name : undefined) ??
      (typeof metadata?.ls_model_name === 'string' ? metadata.ls_model_name : undefined);
    // guard() reads the fleet's spend and throws BudgetExceededError once it is used up.
    await this.optimizer.guard(() => undefined)();
    this.runs.set(runId, model);
  }

  /** Refuses the run when the budget is spent. */
  override async handleLLMStart(
    _llm: unknown,
    _prompts: string[],
    runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): Promise<void> {
    await this.start(runId, extraParams, metadata);
  }

  /** Refuses the run when the budget is spent. */
  override async handleChatModelStart(
    _llm: unknown,
    _messages: unknown[][],
    runId: string,
    _parentRunId?: string,
    extraParams?: Record<string, unknown>,
    _tags?: string[],
    metadata?: Record<string, unknown>,
  ): Promise<void> {
    await this.start(runId, extraParams, metadata);
  }

  /** Prices the run's usage and records it (cache hits cost nothing and are skipped). */
  override async handleLLMEnd(
    output: LLMResult,
    runId: string,
    _parentRunId?: string,
    _tags?: string[],
    extraParams?: Record<string, unknown>,
  ): Promise<void> {
    const model = this.runs.get(runId);
    this.runs.delete(runId);
    if (extraParams?.cached === true) return;
    const usage = usageOfLLMResult(output);
    if (!usage || (usage.input === 0 && usage.output === 0)) return;
    if (model === undefined) {
      this.events.emit(
        'error',
        new ValidationError(
          'the run did not name its model; pass model to AzscaleCallbackHandler',
          {
            option: 'model',
          },
        ),
      );
      return;
    }
    const cached = Math.min(usage.cached, usage.input);
    try {
      const dollars = await this.optimizer.recordLLMUsage({
        model,
        inputTokens: usage.input - cached,
        outputTokens: usage.output,
        cachedInputTokens: cached,
        ...(this.category !== undefined ? { category: this.category } : {}),
      });
      this.events.emit('spend', {
        model,
        inputTokens: usage.input,
        outputTokens: usage.output,
        dollars,
      });
    } catch (e) {
      this.events.emit('error', e);
    }
  }

  /** Forgets a failed run. */
  override async handleLLMError(_err: unknown, runId: string): Promise<void> {
    this.runs.delete(runId);
  }
}
