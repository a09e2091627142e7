/**
 * The pipeline's options, validated once at the public edge and resolved to what the request
 * paths read (defaults filled in, seconds turned into what each stage wants).
 */
import type { CacheLockOptions } from '../cache/distributed-cache.js';
import { isDistributedCache } from '../cache/distributed-cache.js';
import { stableStringify } from '../cache/stable-json.js';
import { ValidationError, describeValue, isValidationError } from '../core/errors.js';
import { KEY_LAYOUT, validatePrefix } from '../core/keys.js';
import { assertDuration, optionalDuration } from '../core/timers.js';
import { assertFunction, assertObject } from '../core/validate.js';
import type { CircuitBreaker } from '../resilience/circuit.js';
import { RateLimiter, type RateLimiterOptions } from '../resilience/rate-limiter.js';
import { isProviderFailure } from './classify.js';
import type { LLMPipelineOptions, LLMTokenEstimateInput } from './types.js';

/** The resolved options of one pipeline. @internal */
export interface PipelineSettings {
  /** The options as given (the stages it hands on as they are: cache, optimizer, limiter...). */
  readonly o: LLMPipelineOptions;
  readonly ttl: number | undefined;
  readonly prefix: string;
  readonly lock: boolean | CacheLockOptions;
  readonly cooldown: number;
  readonly timeoutMs: number | undefined;
  readonly isFailure: (error: unknown) => boolean;
  readonly countTokens: (input: LLMTokenEstimateInput) => number;
  readonly rate: RateLimiter | undefined;
  /** True when the pipeline made `rate` from options (and closes it). */
  readonly ownsRate: boolean;
  readonly chunkChars: number;
  readonly delayMs: number;
}

const DEFAULT_LOCK: CacheLockOptions = { ttl: 60, wait: 60 };

function defaultCount(input: LLMTokenEstimateInput): number {
  let chars = 0;
  try {
    chars = stableStringify(input.request, 'request').length;
  } catch {
    chars = 0;
  }
  return Math.ceil(chars / 4) + (input.maxOutputTokens ?? 0);
}

/** True for a `CircuitBreaker` (from this or another copy of the package). @internal */
export function isBreaker(v: unknown): v is CircuitBreaker {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as CircuitBreaker).execute === 'function' &&
    typeof (v as CircuitBreaker).onOpen === 'function'
  );
}

function assertBooleanOption(v: unknown, option: string): void {
  if (v !== undefined && typeof v !== 'boolean') {
    throw new ValidationError(`${option} must be a boolean, received ${describeValue(v)}`, {
      option,
    });
  }
}

// A stage given as an object must have the method the pipeline calls.
function assertStage(v: unknown, option: string, method: string, kind: string): void {
  if (v === undefined) return;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof (v as Record<string, unknown>)[method] !== 'function'
  ) {
    throw new ValidationError(`${option} must be a ${kind}, received ${describeValue(v)}`, {
      option,
    });
  }
}

function resolveRate(given: LLMPipelineOptions['rateLimiter']): {
  rate: RateLimiter | undefined;
  ownsRate: boolean;
} {
  if (given === undefined || given instanceof RateLimiter) return { rate: given, ownsRate: false };
  const r = assertObject(given, 'rateLimiter') as Record<string, unknown>;
  // A RateLimiter from another copy of the package: used as it is.
  if (typeof r.acquire === 'function' || typeof r.tryAcquire === 'function') {
    return { rate: given as unknown as RateLimiter, ownsRate: false };
  }
  if (r.requestsPerMinute === undefined && r.tokensPerMinute === undefined) {
    throw new ValidationError(
      `rateLimiter must be a RateLimiter or its options (with requestsPerMinute or tokensPerMinute), received ${describeValue(given)}`,
      { option: 'rateLimiter' },
    );
  }
  try {
    return {
      rate: new RateLimiter({ mode: 'sliding-window', ...(r as RateLimiterOptions) }),
      ownsRate: true,
    };
  } catch (e) {
    if (!isValidationError(e)) throw e;
    throw new ValidationError(e.message, { option: `rateLimiter.${e.option ?? ''}`, cause: e });
  }
}

/** Validates `options` (a `ValidationError` names the option) and fills in the defaults. @internal */
export function resolveSettings(options: LLMPipelineOptions): PipelineSettings {
  const o = assertObject(options, 'options') as LLMPipelineOptions;
  if (o.cache !== undefined && !isDistributedCache(o.cache)) {
    throw new ValidationError(
      `cache must be a DistributedCache, received ${describeValue(o.cache)}`,
      { option: 'cache' },
    );
  }
  const ttl = optionalDuration(o.ttl, 'ttl');
  assertBooleanOption(o.cacheNonDeterministic, 'cacheNonDeterministic');
  assertStage(o.optimizer, 'optimizer', 'recordLLMUsage', 'CostOptimizer');
  assertStage(o.limiter, 'limiter', 'run', 'ConcurrencyLimiter');
  if (o.breaker !== undefined && !isBreaker(o.breaker)) assertObject(o.breaker, 'breaker');
  let chunkChars = 0;
  let delayMs = 0;
  if (o.replay !== undefined) {
    assertObject(o.replay, 'replay');
    const c = o.replay.chunkChars;
    if (c !== undefined) {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 0) {
        throw new ValidationError(
          `replay.chunkChars must be an integer >= 0, received ${describeValue(c)}`,
          { option: 'replay.chunkChars' },
        );
      }
      chunkChars = c;
    }
    delayMs =
      optionalDuration(o.replay.delayMs, 'replay.delayMs', { unit: 'ms', allowZero: true }) ?? 0;
  }
  return {
    o,
    ttl,
    prefix: o.keyPrefix === undefined ? KEY_LAYOUT.llm : validatePrefix(o.keyPrefix, 'keyPrefix'),
    lock: o.lock === undefined || o.lock === true ? DEFAULT_LOCK : o.lock,
    cooldown: o.cooldown === undefined ? 30 : assertDuration(o.cooldown, 'cooldown'),
    timeoutMs: o.timeout === undefined ? undefined : assertDuration(o.timeout, 'timeout') * 1000,
    isFailure:
      o.isFailure === undefined ? isProviderFailure : assertFunction(o.isFailure, 'isFailure'),
    countTokens:
      o.countTokens === undefined ? defaultCount : assertFunction(o.countTokens, 'countTokens'),
    ...resolveRate(o.rateLimiter),
    chunkChars,
    delayMs,
  };
}
