/**
 * The LLM pipeline (`azscale/llm`): cache, budget, rate limit, concurrency, breaker and
 * fallbacks for one LLM request, with streams cached as one canonical entry. The AI SDK
 * (`azscale/ai`) and LangChain (`azscale/langchain`) adapters are thin shells over it.
 * @packageDocumentation
 */
export * from './entry.js';
export * from './classify.js';
export type { LLMAnswerSource } from './flight.js';
export * from './pipeline.js';
export * from './openai.js';
export * from './openai-model.js';
export * from './sse.js';
// The types a raw streaming `call` of `cachedLLMCall` (azscale/cache) is written against, so a
// source can be typed from this subpath too (types only: nothing of the cache loads here).
export type {
  CachedLLMCallOptions,
  CachedLLMStream,
  LLMRequest,
  LLMStreamSource,
} from '../cache/llm.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/llm'` works too (the
// same classes as the root export).
export {
  BudgetExceededError,
  CancelledError,
  CircuitOpenError,
  LimitExceededError,
  LLMProviderError,
  TimeoutError,
  ValidationError,
  isLLMProviderError,
} from '../core/errors.js';
