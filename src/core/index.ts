/**
 * What every module shares: errors, key rules, the JSON codec, Redis connections, typed events
 * and the metrics seam.
 * @packageDocumentation
 */
export * from './errors.js';
export * from './backend-errors.js';
export * from './validate.js';
export * from './keys.js';
export * from './codec.js';
export * from './events.js';
export * from './metrics.js';
export * from './connection.js';
export {
  type DurabilityOptions,
  MAX_DURABILITY_REPLICAS,
  MAX_DURABILITY_TIMEOUT_SECONDS,
} from './durability.js';
export * from './backend.js';
