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
