/**
 * The miss path of the pipeline: what runs when the cache has no answer. Budget guard → rate
 * limit (requests and estimated tokens) → per model, primary first: concurrency slot → the
 * model's breaker → the call → spend and the token correction from the reported usage. A
 * provider failure moves to the next model; the failed model's breaker keeps it cooled down.
 */
import { TimeoutError, ValidationError, describeValue } from '../core/errors.js';
import { isBudgetExceededError, isCancelledError } from '../core/errors.js';
import type { Emitter } from '../core/events.js';
import { withSpan } from '../core/trace.js';
import { CircuitBreaker } from '../resilience/circuit.js';
import type { RateGrant } from '../resilience/rate-limiter.js';
import type { CostOptimizer } from '../scaling/cost-optimizer.js';
import { retryAfterOf, statusOf } from './classify.js';
import { type LLMEntry, LLMEntryBuilder, isLLMEntry } from './entry.js';
import type { Flight } from './flight.js';
import type { LLMMetrics } from './metrics.js';
import { type PipelineSettings, isBreaker } from './settings.js';
import type { LLMModelCall, LLMPipelineEvents, LLMPipelineRequest } from './types.js';

/** Stream or whole answer: what the first caller asked for (the model is called that way). */
export type LLMCallMode = 'generate' | 'stream';

/** @internal */
export class ModelCaller {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    private readonly s: PipelineSettings,
    private readonly m: LLMMetrics,
    private readonly events: Emitter<LLMPipelineEvents>,
  ) {}

  /** The breaker of one model (made on first use from the `breaker` options). */
  breakerFor(call: LLMModelCall, index: number): CircuitBreaker | undefined {
    const b = this.s.o.breaker;
    if (b === undefined) return undefined;
    if (isBreaker(b)) return index === 0 ? b : undefined;
    const name = `${b.name ?? 'llm'}:${call.provider ?? 'unknown'}:${call.model}`;
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = new CircuitBreaker({
        failureThreshold: 1,
        ...b,
        name,
        recoveryTimeout: this.s.o.cooldown ?? b.recoveryTimeout ?? this.s.cooldown,
        isFailure: b.isFailure ?? this.s.isFailure,
      });
      this.breakers.set(name, breaker);
    }
    return breaker;
  }

  /** Closes the breakers made from options. */
  async close(): Promise<void> {
    const all = [...this.breakers.values()];
    this.breakers.clear();
    await Promise.all(all.map((b) => b.close()));
  }

  /** Calls the request's models in order until one answers; its parts go into `flight`. */
  async load(flight: Flight, req: LLMPipelineRequest, mode: LLMCallMode): Promise<LLMEntry> {
    const signal = flight.controller.signal;
    const optimizer = this.s.o.optimizer;
    if (optimizer) await this.budgetGuard(optimizer);
    const grant = await this.rateLimit(req, signal);
    let lastError: unknown;
    for (const [i, call] of req.models.entries()) {
      const pushedBefore = flight.parts.length;
      flight.model = call.model;
      try {
        const entry = await this.attempt(flight, call, i, mode, signal);
        await this.afterCall(call, entry, grant);
        return entry;
      } catch (e) {
        lastError = e;
        const next = req.models[i + 1];
        // Parts already went out: the caller has seen half an answer, another model cannot
        // continue it.
        if (flight.parts.length > pushedBefore || signal.aborted || !next || !this.s.isFailure(e))
          throw e;
        const rate = this.s.rate;
        if (statusOf(e) === 429 && rate) {
          const secs = retryAfterOf(e);
          if (secs !== undefined && secs > 0) void rate.penalize(Math.min(secs, 3600));
        }
        this.m.fallbacks.inc();
        this.events.emit('fallback', { from: call.model, to: next.model, error: e });
      }
    }
    throw lastError;
  }

  private budgetGuard(optimizer: CostOptimizer): Promise<void> {
    // guard() reads the fleet's spend, emits budgetExceeded and throws BudgetExceededError.
    return withSpan('azscale.llm.budget', undefined, async () => {
      try {
        await optimizer.guard(() => undefined)();
      } catch (e) {
        if (isBudgetExceededError(e)) this.m.budgetRefused.inc();
        throw e;
      }
    });
  }

  private async rateLimit(
    req: LLMPipelineRequest,
    signal: AbortSignal,
  ): Promise<RateGrant | undefined> {
    const limiter = this.s.rate;
    if (!limiter) return undefined;
    let estimate = this.s.countTokens({
      request: req.request,
      maxOutputTokens: req.maxOutputTokens,
    });
    if (typeof estimate !== 'number' || !Number.isFinite(estimate) || estimate < 0) {
      throw new ValidationError(
        `countTokens must return a number of tokens >= 0, received ${describeValue(estimate)}`,
        { option: 'countTokens' },
      );
    }
    estimate = Math.ceil(estimate);
    // A request larger than a whole window's budget would never fit: it takes the whole window.
    const capacity = limiter.tokenCapacity ?? limiter.tokensPerMinute;
    if (capacity !== undefined) estimate = Math.min(estimate, capacity);
    const tokens = estimate;
    const r = await withSpan('azscale.llm.rate', { 'azscale.llm.estimated_tokens': tokens }, () =>
      limiter.acquire({ tokens, signal }),
    );
    return r.grant;
  }

  private attempt(
    flight: Flight,
    call: LLMModelCall,
    index: number,
    mode: LLMCallMode,
    signal: AbortSignal,
  ): Promise<LLMEntry> {
    const breaker = this.breakerFor(call, index);
    const timeoutMs = this.s.timeoutMs;
    const once = (slot?: AbortSignal) => {
      const signals = [signal];
      if (slot) signals.push(slot);
      if (timeoutMs !== undefined) signals.push(AbortSignal.timeout(timeoutMs));
      const s = signals.length === 1 ? signal : AbortSignal.any(signals);
      const run = () => this.callModel(flight, call, mode, s);
      return breaker ? breaker.execute(run) : run();
    };
    const limiter = this.s.o.limiter;
    return withSpan(
      'azscale.llm.attempt',
      {
        'gen_ai.request.model': call.model,
        'gen_ai.system': call.provider ?? 'unknown',
        'azscale.llm.fallback_index': index,
      },
      async (span) => {
        const e = await (limiter ? limiter.run((slot) => once(slot), { signal }) : once());
        if (span.isRecording()) {
          span.setAttributes({
            'gen_ai.usage.input_tokens': e.usage?.inputTokens,
            'gen_ai.usage.output_tokens': e.usage?.outputTokens,
          });
        }
        return e;
      },
      { kind: 'client' },
    );
  }

  private async callModel(
    flight: Flight,
    call: LLMModelCall,
    mode: LLMCallMode,
    signal: AbortSignal,
  ): Promise<LLMEntry> {
    try {
      if ((mode === 'stream' && call.stream) || !call.generate) {
        const builder = new LLMEntryBuilder();
        for await (const part of (call.stream as NonNullable<LLMModelCall['stream']>)(signal)) {
          if (signal.aborted) break;
          builder.add(part);
          flight.push(part);
        }
        if (signal.aborted) throw signal.reason;
        if (!builder.finished) {
          throw new ValidationError(`the stream of ${call.model} ended without a finish part`, {
            option: 'stream',
          });
        }
        return builder.build();
      }
      const entry = await call.generate(signal);
      if (!isLLMEntry(entry)) {
        throw new ValidationError(`generate() of ${call.model} did not return an LLM entry`, {
          option: 'generate',
        });
      }
      flight.replay(entry, this.s.chunkChars);
      return entry;
    } catch (e) {
      if (signal.aborted && !isCancelledError(e)) {
        if (isTimeoutReason(signal.reason)) {
          throw new TimeoutError(
            `${call.model} did not answer within ${(this.s.timeoutMs ?? 0) / 1000} s`,
            { cause: e, context: { model: call.model } },
          );
        }
        // Aborted from here (every caller left): that, not the torn connection, is the cause.
        if (isCancelledError(signal.reason)) throw signal.reason;
      }
      throw e;
    }
  }

  private async afterCall(
    call: LLMModelCall,
    entry: LLMEntry,
    grant: RateGrant | undefined,
  ): Promise<void> {
    const usage = entry.usage;
    if (!usage) return;
    this.m.inputTokens.inc(usage.inputTokens);
    this.m.outputTokens.inc(usage.outputTokens);
    const limiter = this.s.rate;
    if (limiter?.tokensPerMinute !== undefined && grant) {
      // The estimate becomes the reported usage, both ways, once per grant (the provider counts
      // real tokens).
      await limiter
        .settle(grant, usage.inputTokens + usage.outputTokens)
        .catch((e) => this.events.emit('error', e));
    }
    const optimizer = this.s.o.optimizer;
    if (!optimizer) return;
    const cached = Math.min(usage.cachedInputTokens ?? 0, usage.inputTokens);
    let dollars: number;
    try {
      const model = pricedModel(optimizer, call.model, entry.model);
      const category = this.s.o.category;
      dollars = await optimizer.recordLLMUsage({
        model,
        inputTokens: usage.inputTokens - cached,
        outputTokens: usage.outputTokens,
        cachedInputTokens: cached,
        ...(category !== undefined ? { category } : {}),
      });
    } catch (e) {
      this.events.emit('error', e);
      return;
    }
    this.events.emit('spend', { model: call.model, usage, dollars });
  }
}

// The price list names the requested model; a provider may answer with a dated variant of it.
function pricedModel(
  optimizer: CostOptimizer,
  requested: string,
  answered: string | undefined,
): string {
  if (answered === undefined || answered === requested) return requested;
  try {
    optimizer.estimateLLMCost({ model: requested, inputTokens: 0, outputTokens: 0 });
    return requested;
  } catch {
    return answered;
  }
}

function isTimeoutReason(reason: unknown): boolean {
  return (
    typeof reason === 'object' &&
    reason !== null &&
    (reason as { name?: unknown }).name === 'TimeoutError'
  );
}
