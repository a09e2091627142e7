import { LimitExceededError, ValidationError, describeValue } from '../core/errors.js';
import { validateId } from '../core/keys.js';
import { assertNumber } from '../core/validate.js';
import { CircuitBreaker, type CircuitOptions } from './circuit-breaker.js';
import { MAX_REGISTERED_BREAKERS, type CircuitSnapshot } from './circuit-options.js';
import { optionsObject } from './options.js';

/** Options of a {@link CircuitBreakerRegistry}. */
export interface CircuitBreakerRegistryOptions {
  /**
   * The most breakers the registry holds at once; past it, registering a new name throws
   * `LimitExceededError` (names are often built from user data: a tenant, a host).
   * @default MAX_REGISTERED_BREAKERS (10,000)
   */
  maxBreakers?: number;
}

/**
 * Named circuit breakers, one per name: every `circuit(...)` or `@circuit` with the same name
 * shares one breaker, so decorating a method (or wrapping a function in a hot path) never
 * creates a breaker per call or per instance.
 *
 * Process-wide sharing goes through {@link defaultBreakerRegistry}, which {@link circuit},
 * {@link circuitBreaker} and the free functions use unless given `registry`. A registry of your
 * own keeps a set of breakers apart (a test, a tenant) and is closed as one.
 *
 * @example
 * const registry = new CircuitBreakerRegistry();
 * const search = circuit(fetchSearch, { name: 'search', registry });
 * await registry.close(); // closes every breaker in it
 */
export class CircuitBreakerRegistry {
  /** The most breakers held at once. */
  readonly maxBreakers: number;
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(options: CircuitBreakerRegistryOptions = {}) {
    const o = optionsObject<CircuitBreakerRegistryOptions>(options, 'options');
    this.maxBreakers =
      o.maxBreakers === undefined
        ? MAX_REGISTERED_BREAKERS
        : assertNumber(o.maxBreakers, 'maxBreakers', { integer: true, min: 1 });
  }

  /**
   * The breaker registered under `options.name`, created with `options` on first use. Later
   * calls with the same name return the same breaker and ignore their options.
   * @throws LimitExceededError when the registry already holds `maxBreakers` breakers.
   */
  get(options: CircuitOptions & { name: string }): CircuitBreaker {
    const o = optionsObject<CircuitOptions>(options, 'options');
    const name = validateId(o.name, 'name');
    const existing = this.breakers.get(name);
    if (existing) return existing;
    if (this.breakers.size >= this.maxBreakers) {
      throw new LimitExceededError(
        `the circuit breaker registry holds ${this.breakers.size} breakers (maxBreakers); close some before registering ${JSON.stringify(name.slice(0, 80))}`,
        { context: { max: this.maxBreakers } },
      );
    }
    const created = new CircuitBreaker(options);
    this.breakers.set(name, created);
    created.leaveRegistry = () => {
      if (this.breakers.get(name) === created) this.breakers.delete(name);
    };
    return created;
  }

  /** The breaker registered under `name`, if any. */
  find(name: string): CircuitBreaker | undefined {
    return this.breakers.get(name);
  }

  /** True when a breaker is registered under `name`. */
  has(name: string): boolean {
    return this.breakers.has(name);
  }

  /** How many breakers are registered. */
  get size(): number {
    return this.breakers.size;
  }

  /** Every registered breaker. */
  list(): CircuitBreaker[] {
    return [...this.breakers.values()];
  }

  /** The exported state of every registered breaker, by name. */
  exportStates(): Record<string, CircuitSnapshot> {
    // fromEntries defines own properties: a breaker named `__proto__` is an entry, not a prototype.
    return Object.fromEntries([...this.breakers].map(([name, b]) => [name, b.toJSON()]));
  }

  /**
   * Closes every registered breaker (their Redis connections, sync timers) and empties the
   * registry. The registry stays usable: a later `get` registers afresh.
   */
  async close(): Promise<void> {
    const all = [...this.breakers.values()];
    this.breakers.clear();
    await Promise.all(all.map((b) => b.close()));
  }
}

/** The process-wide registry that {@link circuit}, `@circuit` and {@link circuitBreaker} use by default. */
export const defaultBreakerRegistry = new CircuitBreakerRegistry();

/** Options that pick a registry: `registry`, by default {@link defaultBreakerRegistry}. */
export interface RegistryOption {
  /**
   * The registry that keeps this named breaker.
   * @default defaultBreakerRegistry
   */
  registry?: CircuitBreakerRegistry;
}

/** @internal The registry `options.registry` names (checked), or the default one. */
export function registryOf(options: RegistryOption): CircuitBreakerRegistry {
  const r = options.registry;
  if (r === undefined) return defaultBreakerRegistry;
  if (
    typeof r !== 'object' ||
    r === null ||
    typeof (r as CircuitBreakerRegistry).get !== 'function' ||
    typeof (r as CircuitBreakerRegistry).find !== 'function'
  ) {
    throw new ValidationError(
      `registry must be a CircuitBreakerRegistry, received ${describeValue(r)}`,
      { option: 'registry' },
    );
  }
  return r;
}

/**
 * The breaker registered under `options.name` (in `options.registry`, by default
 * {@link defaultBreakerRegistry}), created with `options` on first use. Later calls with the
 * same name return the same breaker and ignore their options.
 */
export function circuitBreaker(
  options: CircuitOptions & RegistryOption & { name: string },
): CircuitBreaker {
  return registryOf(optionsObject<RegistryOption>(options, 'options')).get(options);
}

/** The breaker registered under `name` in the default registry, if any. */
export function getCircuitBreaker(name: string): CircuitBreaker | undefined {
  return defaultBreakerRegistry.find(name);
}

/** Every breaker in the default registry. */
export function listCircuitBreakers(): CircuitBreaker[] {
  return defaultBreakerRegistry.list();
}

/** The exported state of every breaker in the default registry, by name. */
export function exportCircuitStates(): Record<string, CircuitSnapshot> {
  return defaultBreakerRegistry.exportStates();
}

/** Closes every breaker in the default registry and empties it. */
export function closeCircuitBreakers(): Promise<void> {
  return defaultBreakerRegistry.close();
}
