import { CircuitOpenError, ValidationError, describeValue } from '../core/errors.js';
import type { Disposer } from '../core/events.js';
import { validateId } from '../core/keys.js';
import {
  type AnyMethod,
  type ResilienceDecorator,
  classNameOf,
  methodDecorator,
  perInstance,
} from './decorate.js';
import { optionsObject } from './options.js';
import { CircuitBreaker, type CircuitOptions, REJECTED } from './circuit-breaker.js';
import {
  type CircuitEvents,
  type CircuitSnapshot,
  type CircuitStateName,
  assertSharedName,
  resolveOptions,
} from './circuit-options.js';
import { type RegistryOption, circuitBreaker, registryOf } from './circuit-registry.js';

// The function and decorator forms of a circuit breaker. The breaker itself lives in
// circuit-breaker.ts, its rules in circuit-options.ts, the registry in circuit-registry.ts; all
// are exported from here too (the 0.1.0 import path).
export { CircuitBreaker, type CircuitOptions } from './circuit-breaker.js';
export {
  MAX_REGISTERED_BREAKERS,
  type CircuitBreakerKind,
  type CircuitEvents,
  type CircuitSettings,
  type CircuitSnapshot,
  type CircuitStateName,
} from './circuit-options.js';
export {
  CircuitBreakerRegistry,
  type CircuitBreakerRegistryOptions,
  type RegistryOption,
  circuitBreaker,
  closeCircuitBreakers,
  defaultBreakerRegistry,
  exportCircuitStates,
  getCircuitBreaker,
  listCircuitBreakers,
} from './circuit-registry.js';

/**
 * A function guarded by a breaker: same arguments, always async, with its breaker attached and
 * the breaker's state and events also readable on the function itself.
 */
export type CircuitGuarded<A extends unknown[], R> = ((...args: A) => Promise<Awaited<R>>) & {
  /** The breaker guarding this function. */
  readonly breaker: CircuitBreaker;
  /** The breaker's state (see {@link CircuitBreaker.state}). */
  readonly state: CircuitStateName;
  /** See {@link CircuitBreaker.onOpen}. */
  onOpen(listener: CircuitEvents['open']): Disposer;
  /** See {@link CircuitBreaker.onHalfOpen}. */
  onHalfOpen(listener: CircuitEvents['halfOpen']): Disposer;
  /** See {@link CircuitBreaker.onClose}. */
  onClose(listener: CircuitEvents['close']): Disposer;
  /** See {@link CircuitBreaker.exportState}. */
  exportState(): CircuitSnapshot;
};

function guard(breaker: CircuitBreaker, fn: AnyMethod, fallback: AnyMethod | undefined): AnyMethod {
  const slow = async (self: unknown, args: unknown[]): Promise<unknown> => {
    const r = await breaker.call(fn, self, args);
    if (r !== REJECTED) return r;
    if (fallback) return fallback.apply(self, args);
    throw breaker.openError();
  };
  // Not async itself: on the hot path (closed breaker) the caller gets cockatiel's own promise.
  // A call without arguments or `this` (the common `guarded()`) needs no closure per call.
  const bare = () => fn();
  return function guarded(this: unknown, ...args: unknown[]): Promise<unknown> {
    const policy = breaker.fast();
    if (policy) {
      return policy.execute(
        args.length === 0 && this === undefined ? bare : () => fn.apply(this, args),
      );
    }
    return slow(this, args);
  };
}

/**
 * Guards a function with a circuit breaker, or (called with options only) decorates a method.
 * Built on cockatiel: a consecutive-failure breaker by default (`failureThreshold` failures in a
 * row open it), half-open after `recoveryTimeout` seconds, closed again by one successful trial.
 * While open, calls reject with {@link CircuitOpenError} or go to `fallback`.
 *
 * @example
 * class Client {
 *   @circuit({ failureThreshold: 5, recoveryTimeout: 60 })
 *   async callExternalService() { ... }
 * }
 * const guarded = circuit(fetchQuote, { name: 'quotes', failureThreshold: 5, recoveryTimeout: 60 });
 * guarded.breaker.onOpen(() => alert('quotes down'));
 */
export function circuit<A extends unknown[], R, F = Awaited<R>>(
  fn: (...args: A) => R,
  options?: CircuitOptions<A, F> & RegistryOption,
): CircuitGuarded<A, R | F>;
export function circuit(options?: CircuitOptions & RegistryOption): ResilienceDecorator;
export function circuit(...args: unknown[]): unknown {
  const [first, second] = args;
  if (typeof first === 'function' && !(args.length >= 2 && isDecoratorContext(second))) {
    const o = optionsObject<CircuitOptions & RegistryOption>(second, 'options');
    const shared =
      (o.redis !== undefined && o.redis !== null) ||
      o.store !== undefined ||
      o.backend !== undefined;
    const breaker =
      o.name === undefined
        ? // A shared one without a name is refused by the constructor (after its other checks).
          new CircuitBreaker(shared ? o : { ...o, name: validName(first.name) })
        : circuitBreaker({ ...o, name: o.name });
    const guarded = guard(breaker, first as AnyMethod, resolveOptions(o, breaker.name).fallback);
    Object.defineProperties(guarded, {
      breaker: { value: breaker, enumerable: true },
      state: { get: () => breaker.state, enumerable: true },
      onOpen: { value: (l: CircuitEvents['open']) => breaker.onOpen(l) },
      onHalfOpen: { value: (l: CircuitEvents['halfOpen']) => breaker.onHalfOpen(l) },
      onClose: { value: (l: CircuitEvents['close']) => breaker.onClose(l) },
      exportState: { value: () => breaker.toJSON() },
    });
    Object.defineProperty(guarded, 'name', { value: first.name, configurable: true });
    return guarded;
  }
  // Bare `@circuit` (no parentheses): the decorator arguments arrive here directly.
  if (args.length >= 2 && (isDecoratorContext(second) || args.length === 3)) {
    return (circuitDecorator(undefined) as (...a: unknown[]) => unknown)(...args);
  }
  if (
    first !== undefined &&
    (typeof first !== 'object' || first === null || Array.isArray(first))
  ) {
    throw new ValidationError(
      `circuit expects a function (and options) or an options object, received ${describeValue(first)}`,
      { option: 'fn' },
    );
  }
  return circuitDecorator(first as (CircuitOptions & RegistryOption) | undefined);
}

function isDecoratorContext(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'kind' in v && 'name' in v;
}

function validName(n: string): string {
  try {
    return validateId(n, 'name', 200);
  } catch {
    return 'anonymous';
  }
}

function circuitDecorator(
  options: (CircuitOptions & RegistryOption) | undefined,
): ResilienceDecorator {
  // Validate now, so a bad option fails at class definition rather than at the first call.
  const o = optionsObject<CircuitOptions & RegistryOption>(options, 'options');
  const registry = registryOf(o);
  const given = o.breaker;
  if (typeof given === 'function' || given instanceof CircuitBreaker) {
    const { breaker: _b, ...rest } = o;
    const fallback = resolveOptions(rest, 'circuit').fallback;
    const isBreaker = (v: unknown): v is CircuitBreaker => v instanceof CircuitBreaker;
    return methodDecorator('circuit', (original) =>
      perInstance(
        typeof given === 'function' ? (given as (self: unknown) => unknown) : () => given,
        isBreaker,
        'CircuitBreaker',
        'breaker',
        (b) => guard(b, original, fallback),
      ),
    );
  }
  resolveOptions(o, 'circuit');
  assertSharedName(o, '@circuit');
  return methodDecorator('circuit', (original, info) => {
    let guarded: AnyMethod | undefined;
    // Built on the first call (so `redis` connects only when used), once per decorated method.
    const build = (self: unknown): AnyMethod => {
      let name = o.name;
      if (name === undefined) {
        // The default name belongs to this method definition: another class that happens to
        // have the same name (two `Client` classes in one process) gets `Client.method#2`
        // rather than sharing its breaker. An explicit `name` shares on purpose.
        const base = `${info.className ?? classNameOf(self) ?? 'anonymous'}.${info.methodName}`;
        name = base;
        for (let i = 2; registry.has(name); i++) name = `${base}#${i}`;
      }
      const breaker = circuitBreaker({ ...o, name });
      return guard(breaker, original, resolveOptions(o, name).fallback);
    };
    return function circuitGuarded(this: unknown, ...args: unknown[]): Promise<unknown> {
      guarded ??= build(this);
      return guarded.apply(this, args);
    };
  });
}
