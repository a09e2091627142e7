import { ValidationError, describeValue } from '../core/errors.js';

/**
 * One method decorator that works in both compilations: TC39 decorators (TypeScript 5 without a
 * flag: `(method, context)`) and legacy `experimentalDecorators` (`(prototype, name,
 * descriptor)`). The shape of the arguments tells them apart.
 */

// biome-ignore lint/suspicious/noExplicitAny: a decorated method may have any signature
export type AnyMethod = (this: any, ...args: any[]) => any;

/** What the wrapper factory learns about the decorated method. */
export interface MethodInfo {
  /** The method's name (`String(symbol)` for symbol names). */
  methodName: string;
  /** The class name when known at decoration time (legacy form), else `undefined`. */
  className: string | undefined;
}

/** A method decorator usable as TC39 or legacy decorator. */
export interface ResilienceDecorator {
  <F extends AnyMethod>(value: F, context: ClassMethodDecoratorContext): F;
  (
    target: object,
    propertyKey: string | symbol,
    descriptor: PropertyDescriptor,
  ): PropertyDescriptor;
}

interface Tc39Context {
  kind: string;
  name: string | symbol;
}

function isTc39Context(v: unknown): v is Tc39Context {
  return typeof v === 'object' && v !== null && 'kind' in v && 'name' in v;
}

/** Builds a decorator from `wrap(original, info)`, which returns the replacement method. */
export function methodDecorator(
  decoratorName: string,
  wrap: (original: AnyMethod, info: MethodInfo) => AnyMethod,
): ResilienceDecorator {
  function decorator(...args: unknown[]): unknown {
    if (args.length === 2 && isTc39Context(args[1])) {
      const ctx = args[1];
      if (ctx.kind !== 'method') {
        throw new ValidationError(
          `@${decoratorName} applies to methods, not to a ${ctx.kind} (${String(ctx.name)})`,
          { option: decoratorName },
        );
      }
      if (typeof args[0] !== 'function') {
        throw new ValidationError(
          `@${decoratorName} must decorate a method, received ${describeValue(args[0])}`,
          {
            option: decoratorName,
          },
        );
      }
      return wrap(args[0] as AnyMethod, { methodName: String(ctx.name), className: undefined });
    }
    const [target, key, descriptor] = args as [unknown, unknown, PropertyDescriptor | undefined];
    if (
      (typeof target === 'object' || typeof target === 'function') &&
      target !== null &&
      (typeof key === 'string' || typeof key === 'symbol') &&
      descriptor &&
      typeof descriptor.value === 'function'
    ) {
      const className =
        typeof target === 'function'
          ? (target as { name?: string }).name
          : (target as { constructor?: { name?: string } }).constructor?.name;
      descriptor.value = wrap(descriptor.value as AnyMethod, {
        methodName: String(key),
        className: className || undefined,
      });
      return descriptor;
    }
    throw new ValidationError(
      `@${decoratorName} must decorate a method, received ${describeValue(args[0])}`,
      { option: decoratorName },
    );
  }
  return decorator as ResilienceDecorator;
}

/** The class name for `this` inside a method (static or instance). */
export function classNameOf(self: unknown): string | undefined {
  if (typeof self === 'function') return (self as { name?: string }).name || undefined;
  if (typeof self === 'object' && self !== null) {
    return (self as { constructor?: { name?: string } }).constructor?.name || undefined;
  }
  return undefined;
}

/**
 * A method that finds its backend (a breaker, a limiter) on the instance at every call: the
 * `(self) => self.limiter` form of the decorators, for backends injected into the object (a
 * NestJS provider) rather than known where the class is defined. `wrap` builds the guarded
 * method once per backend.
 */
export function perInstance<B extends object>(
  resolve: (self: unknown) => unknown,
  isBackend: (v: unknown) => v is B,
  what: string,
  option: string,
  wrap: (backend: B) => AnyMethod,
): AnyMethod {
  const wrapped = new WeakMap<B, AnyMethod>();
  return function resolvedPerInstance(this: unknown, ...args: unknown[]): Promise<unknown> {
    let b: unknown;
    try {
      b = resolve(this);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!isBackend(b)) {
      return Promise.reject(
        new ValidationError(`the ${option} function returned ${describeValue(b)}, not a ${what}`, {
          option,
        }),
      );
    }
    let m = wrapped.get(b);
    if (m === undefined) {
      m = wrap(b);
      wrapped.set(b, m);
    }
    return m.apply(this, args) as Promise<unknown>;
  };
}
