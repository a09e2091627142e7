/**
 * The LangChain.js adapter (`azscale/langchain`): {@link AzscaleLangChainCache}, a LangChain
 * cache over a `DistributedCache`, and {@link AzscaleCallbackHandler}, a fleet-wide budget for
 * LangChain runs. Needs `@langchain/core`; importing this subpath without it throws a
 * `MissingDependencyError` naming it.
 * @packageDocumentation
 */
export * from './cache.js';
export * from './callback.js';
