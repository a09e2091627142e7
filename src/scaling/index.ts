/**
 * azscale/scaling: the seed's resource presets and worker sizing, a ScalingAdvisor that says
 * when and which way to scale, and a CostOptimizer that tracks real spend per clock hour, shared
 * across instances through Redis. Importing this module never loads ioredis or pg; ioredis is
 * loaded only when a CostOptimizer is given a Redis.
 * @packageDocumentation
 */
export {
  ResourceConfig,
  getConfigForScale,
  calculateWorkers,
  DEFAULT_MAX_WORKERS,
  type ResourcePreset,
  type ScaleName,
  type CalculateWorkersOptions,
} from './presets.js';
export {
  ScalingAdvisor,
  DEFAULT_SCALING_THRESHOLDS,
  type ScalingAdvisorOptions,
  type ScalingAdvisorEvents,
  type ScalingThresholds,
  type ScalingSnapshot,
  type ScalingAssessment,
  type ScalingSignal,
  type ScalingIndicator,
  type ScaleAdvice,
  type ScaleDirection,
  type Bottleneck,
} from './advisor.js';
export {
  CostOptimizer,
  MAX_SPEND_AMOUNT,
  DEFAULT_HOURLY_BUDGET,
  DEFAULT_SCALE_UP_CPU_PERCENT,
  DEFAULT_INSTANCE_TYPES,
  type CostOptimizerOptions,
  type CostOptimizerEvents,
  type BudgetExceededEvent,
  type HourlySpend,
  type SpendEvent,
  type LLMUsage,
  type ShouldScaleUpInput,
  type DesiredReplicasInput,
  type GuardOptions,
  type GuardedFunction,
} from './cost-optimizer.js';
export {
  DEFAULT_PRICES,
  DEFAULT_PRICES_AS_OF,
  findModelPrice,
  type ModelPrice,
  type PriceTable,
} from './prices.js';
export { MAX_CATEGORIES, OP_ID_TTL_MS, OTHER_CATEGORY, type SpendStore } from './spend-store.js';
export { MemorySpendStore } from './memory-store.js';
export { RedisSpendStore, type RedisSpendStoreOptions } from './redis-store.js';
// The error classes this module throws, so `import { ..., X } from 'azscale/scaling'` works too
// (the same classes as the root export).
export {
  AzscaleError,
  BackendUnavailableError,
  BudgetExceededError,
  ValidationError,
} from '../core/errors.js';
