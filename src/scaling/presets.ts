import { availableParallelism, cpus as osCpus } from 'node:os';
import { ValidationError, describeValue } from '../core/errors.js';
import { assertNumber, assertObject, assertOneOf } from '../core/validate.js';

/**
 * The seed's resource presets and worker sizing (config/resource_config.py and
 * calculate_workers()), typed and frozen.
 */

/** Preset names accepted by {@link getConfigForScale} (any letter case). */
export type ScaleName = 'small' | 'medium' | 'large' | 'xlarge';

/**
 * One resource profile. The enumerable keys are exactly the seed's (`workers`, `cpu_limit`,
 * `memory_limit`, `llm_concurrent_requests`, `cache_size_mb`), so `JSON.stringify` and deep
 * equality see the seed's dict; the camelCase aliases are non-enumerable getters of the same
 * values for TypeScript code.
 */
export interface ResourcePreset {
  /** Server worker processes (gunicorn `-w`), as in the seed. */
  readonly workers: number;
  /** Kubernetes CPU limit, as a quantity string (cores). */
  readonly cpu_limit: string;
  /** Kubernetes memory limit, as a quantity string (`Gi`). */
  readonly memory_limit: string;
  /** Concurrent in-flight LLM requests per instance. */
  readonly llm_concurrent_requests: number;
  /** Cache size in megabytes. */
  readonly cache_size_mb: number;
  /** Alias of `cpu_limit`. */
  readonly cpuLimit: string;
  /** Alias of `memory_limit`. */
  readonly memoryLimit: string;
  /** Alias of `llm_concurrent_requests`. */
  readonly llmConcurrentRequests: number;
  /** Alias of `cache_size_mb`. */
  readonly cacheSizeMb: number;
}

function preset(
  workers: number,
  cpu_limit: string,
  memory_limit: string,
  llm_concurrent_requests: number,
  cache_size_mb: number,
): ResourcePreset {
  const p = { workers, cpu_limit, memory_limit, llm_concurrent_requests, cache_size_mb };
  // Aliases are non-enumerable so a deep-equality check against the seed's dict still passes.
  Object.defineProperties(p, {
    cpuLimit: { value: cpu_limit, enumerable: false },
    memoryLimit: { value: memory_limit, enumerable: false },
    llmConcurrentRequests: { value: llm_concurrent_requests, enumerable: false },
    cacheSizeMb: { value: cache_size_mb, enumerable: false },
  });
  return Object.freeze(p) as ResourcePreset;
}

/**
 * The seed's four resource profiles, frozen.
 *
 * | preset | workers | cpu_limit | memory_limit | llm_concurrent_requests | cache_size_mb |
 * |--------|---------|-----------|--------------|-------------------------|---------------|
 * | SMALL (dev/staging)          | 2  | "1" | "2Gi"  | 5  | 500  |
 * | MEDIUM (small production)    | 4  | "2" | "4Gi"  | 10 | 2000 |
 * | LARGE (production)           | 8  | "4" | "8Gi"  | 20 | 4000 |
 * | XLARGE (high traffic)        | 16 | "8" | "16Gi" | 50 | 8000 |
 *
 * @example
 * const { workers, memory_limit } = ResourceConfig.LARGE; // 8, '8Gi'
 */
export const ResourceConfig: Readonly<{
  /** Small (dev/staging). */
  SMALL: ResourcePreset;
  /** Medium (small production). */
  MEDIUM: ResourcePreset;
  /** Large (production). */
  LARGE: ResourcePreset;
  /** XLarge (high traffic). */
  XLARGE: ResourcePreset;
}> = Object.freeze({
  SMALL: preset(2, '1', '2Gi', 5, 500),
  MEDIUM: preset(4, '2', '4Gi', 10, 2000),
  LARGE: preset(8, '4', '8Gi', 20, 4000),
  XLARGE: preset(16, '8', '16Gi', 50, 8000),
});

const SCALE_NAMES: readonly ScaleName[] = ['small', 'medium', 'large', 'xlarge'];

/**
 * The preset for `scale`, matched case-insensitively (`'large'`, `'LARGE'`). Returns the frozen
 * preset object itself.
 *
 * @param scale - `small`, `medium`, `large` or `xlarge`. @default 'medium'
 * @throws ValidationError (option `scale`) for any other value.
 * @example
 * const config = getConfigForScale('large'); // ResourceConfig.LARGE
 */
export function getConfigForScale(scale: ScaleName | (string & {}) = 'medium'): ResourcePreset {
  if (typeof scale !== 'string') {
    throw new ValidationError(
      `scale must be one of ${SCALE_NAMES.map((s) => `'${s}'`).join(', ')}, received ${describeValue(scale)}`,
      { option: 'scale' },
    );
  }
  const name = assertOneOf(scale.toLowerCase(), 'scale', SCALE_NAMES);
  return ResourceConfig[name.toUpperCase() as keyof typeof ResourceConfig];
}

/** The seed's cap on workers when `MAX_WORKERS` is not set. */
export const DEFAULT_MAX_WORKERS = 32;

/** Options of {@link calculateWorkers}. */
export interface CalculateWorkersOptions {
  /**
   * `'io'` for I/O-bound work such as LLM calls (the seed's case: 2x CPUs), `'cpu'` for CPU-bound
   * work (1x CPUs).
   * @default 'io'
   */
  workload?: 'io' | 'cpu';
  /**
   * Number of CPUs to size for.
   * @default os.availableParallelism() (falls back to os.cpus().length)
   */
  cpus?: number;
  /**
   * Upper bound on the result. When omitted, the `MAX_WORKERS` environment variable is used, and
   * when that is unset, {@link DEFAULT_MAX_WORKERS} (32), as in the seed. An explicit option wins
   * over the environment.
   */
  maxWorkers?: number;
  /**
   * Workers per CPU for I/O-bound work. The seed says "2-4x CPU count" and uses 2.
   * @default 2
   */
  ioMultiplier?: number;
  /**
   * Where `MAX_WORKERS` is read from (for tests and for config loaders).
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>>;
}

function detectCpus(): number {
  try {
    return availableParallelism();
  } catch {
    return Math.max(1, osCpus().length);
  }
}

/**
 * Worker count for a server process, by the seed's rule: I/O-bound (LLM) work gets 2x the CPU
 * count, CPU-bound work 1x, capped at `maxWorkers` / `MAX_WORKERS` / 32. Never less than 1.
 *
 * @throws ValidationError naming `cpus`, `maxWorkers`, `ioMultiplier`, `workload` or
 *   `MAX_WORKERS` (when the environment variable is not a positive integer).
 * @example
 * calculateWorkers();                          // 2 x CPUs, at most 32
 * calculateWorkers({ workload: 'cpu' });       // 1 x CPUs
 * calculateWorkers({ cpus: 8, maxWorkers: 12 }); // 12
 */
export function calculateWorkers(options: CalculateWorkersOptions = {}): number {
  assertObject(options, 'options');
  const workload = assertOneOf(options.workload ?? 'io', 'workload', ['io', 'cpu'] as const);
  const cpus =
    options.cpus === undefined
      ? detectCpus()
      : assertNumber(options.cpus, 'cpus', { integer: true, positive: true });
  const ioMultiplier =
    options.ioMultiplier === undefined
      ? 2
      : assertNumber(options.ioMultiplier, 'ioMultiplier', { positive: true });
  let max: number;
  if (options.maxWorkers !== undefined) {
    max = assertNumber(options.maxWorkers, 'maxWorkers', { integer: true, positive: true });
  } else {
    const raw = (options.env ?? process.env).MAX_WORKERS;
    if (raw === undefined || raw.trim() === '') {
      max = DEFAULT_MAX_WORKERS;
    } else {
      const n = Number(raw.trim());
      if (!Number.isInteger(n) || n <= 0) {
        throw new ValidationError(
          `MAX_WORKERS must be a positive integer, received ${describeValue(raw)}`,
          { option: 'MAX_WORKERS' },
        );
      }
      max = n;
    }
  }
  const raw = workload === 'io' ? Math.floor(cpus * ioMultiplier) : cpus;
  return Math.max(1, Math.min(raw, max));
}
