/** The pipeline's metric handles, made once per pipeline so a request only increments them. */
import type { MetricsSink } from '../core/metrics.js';

/** @internal */
export function makeLLMMetrics(metrics: MetricsSink) {
  return {
    cache: metrics.counter('llm_requests_total', { source: 'cache' }),
    peer: metrics.counter('llm_requests_total', { source: 'peer' }),
    model: metrics.counter('llm_requests_total', { source: 'model' }),
    bypass: metrics.counter('llm_requests_total', { source: 'bypass' }),
    failed: metrics.counter('llm_requests_total', { source: 'error' }),
    fallbacks: metrics.counter('llm_fallbacks_total'),
    inputTokens: metrics.counter('llm_tokens_total', { kind: 'input' }),
    outputTokens: metrics.counter('llm_tokens_total', { kind: 'output' }),
    budgetRefused: metrics.counter('llm_budget_refused_total'),
    duration: metrics.histogram('llm_request_seconds'),
    firstPart: metrics.histogram('llm_time_to_first_part_seconds'),
  };
}

/** @internal */
export type LLMMetrics = ReturnType<typeof makeLLMMetrics>;
