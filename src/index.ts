/**
 * azscale: scaling primitives for Node.js services. Every subpath's exports, plus the shared
 * core (errors and their guards, codec, keys, connections, events, metrics seam).
 * @packageDocumentation
 */
export * from './core/index.js';
export * from './session/index.js';
export * from './cache/index.js';
export * from './db/index.js';
export * from './worker/index.js';
export * from './resilience/index.js';
export * from './scaling/index.js';
export * from './observability/index.js';
export * from './llm/index.js';
