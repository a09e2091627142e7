/**
 * Injection tokens of the primitives `AzscaleModule` provides: `@Inject(AZSCALE_CACHE) cache:
 * DistributedCache`. The classes themselves are tokens too (`constructor(cache:
 * DistributedCache)` with `emitDecoratorMetadata`).
 */
/** The module options (after `forRootAsync`'s factory ran). */
export const AZSCALE_OPTIONS = 'AZSCALE_OPTIONS';
/** Everything the module built or was given (internal: owns the close). */
export const AZSCALE_RESOURCES = 'AZSCALE_RESOURCES';
/** `DistributedCache`. */
export const AZSCALE_CACHE = 'AZSCALE_CACHE';
/** `DistributedSessionManager`. */
export const AZSCALE_SESSIONS = 'AZSCALE_SESSIONS';
/** `TaskQueue`. */
export const AZSCALE_QUEUE = 'AZSCALE_QUEUE';
/** `BackgroundWorker`. */
export const AZSCALE_WORKER = 'AZSCALE_WORKER';
/** `ConcurrencyLimiter`. */
export const AZSCALE_LIMITER = 'AZSCALE_LIMITER';
/** `Record<string, CircuitBreaker>`. */
export const AZSCALE_BREAKERS = 'AZSCALE_BREAKERS';
/** `Metrics`. */
export const AZSCALE_METRICS = 'AZSCALE_METRICS';
/** `HealthRegistry` (with a `redis` check when the module has `redis`). */
export const AZSCALE_HEALTH = 'AZSCALE_HEALTH';
/** `CostOptimizer`. */
export const AZSCALE_OPTIMIZER = 'AZSCALE_OPTIMIZER';
