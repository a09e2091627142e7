import type { LRUCache } from 'lru-cache';
import { ValidationError, describeValue } from '../core/errors.js';
import { sha256Hex, validateId } from '../core/keys.js';
import { assertDuration } from '../core/timers.js';
import { assertFunction } from '../core/validate.js';
import { type DistributedCache, cacheRegistry, isDistributedCache } from './distributed-cache.js';
import { type CachedTarget, targetOf } from './internal.js';
import { type CacheLockOptions, type ResolvedLock, resolveLock } from './options.js';
import { argsKeyText } from './stable-json.js';
import type { LocalEntry } from './store.js';

/** Options of {@link cached}. */
export interface CachedOptions<Args extends unknown[] = unknown[]> {
  /** Seconds to live; defaults to the cache's `ttl` (3600 unless configured). */
  ttl?: number;
  /**
   * Where results go: a cache, or (decorators) a function of the instance that returns one, so
   * a method uses the cache its object was given (`cache: (self) => self.cache`, e.g. one a
   * NestJS service had injected). The function runs on every call; each cache it returns keeps
   * its own entries.
   * @default the process-wide in-memory cache ({@link getDefaultCache})
   */
  // biome-ignore lint/suspicious/noExplicitAny: the instance type is the decorated class's
  cache?: DistributedCache | ((self: any) => DistributedCache);
  /**
   * Makes entries per instance configuration: its result (a string, at most 200 characters) is
   * part of the key. Without it the key is the method, version and arguments only, so every
   * instance of the class (in this process and in every pod) shares one entry per arguments:
   * right for singleton services, wrong for two instances configured differently (say two
   * clients of different regions), which then need `instanceKey: (self) => self.region`.
   * With `key`, the stored key is `<instanceKey>:<key(...args)>`.
   * @default undefined (entries shared by all instances)
   */
  // biome-ignore lint/suspicious/noExplicitAny: the instance type is the decorated class's
  instanceKey?: (self: any) => string;
  /**
   * Builds the key from the arguments instead of hashing them. The returned key is used as is
   * (plus the cache's `prefix`), so `cache.delete(key(...args))` invalidates an entry. Needed
   * when arguments have no stable JSON form (class instances with sockets, functions...).
   */
  key?: (...args: Args) => string;
  /**
   * Name in the key, instead of `Class.method` (decorators) or the function's name.
   * Set it when the code is minified, or to share entries between two functions.
   */
  name?: string;
  /**
   * Version in the key: bump it when the function's result shape changes, so old entries are
   * not served to the new code.
   * @default 1
   */
  version?: string | number;
  /** Redis lock on a miss so one call runs per cluster (see `DistributedCache` `lock`). */
  lock?: boolean | CacheLockOptions;
}

/**
 * A function made by {@link cached}: same arguments and `this`, result always a Promise.
 * @typeParam F - The type of the wrapped function.
 */
export type CachedFunction<F extends (...args: never[]) => unknown> = (
  this: ThisParameterType<F>,
  ...args: Parameters<F>
) => Promise<Awaited<ReturnType<F>>>;

/**
 * What `@cached(...)` returns: a method decorator for both TC39 decorators (TypeScript 5+, no
 * flag) and legacy `experimentalDecorators` (NestJS); the form is detected from the arguments.
 * The decorated method returns a Promise at run time even if it was synchronous: declare its
 * return type as `Promise<T>`.
 */
export interface CachedDecorator {
  <This, Args extends unknown[], R>(
    value: (this: This, ...args: Args) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => R>,
  ): (this: This, ...args: Args) => R;
  (target: object, propertyKey: string | symbol, descriptor: PropertyDescriptor): void;
}

// Longer argument texts are hashed so keys stay short; shorter ones are used as is, which keeps
// the L1-hit path free of hashing.
const MAX_INLINE_ARGS = 200;
// The fast-path memo (`recent`) holds argument texts up to MAX_INLINE_ARGS characters (longer
// ones take the hashed path) and at most this many of them, oldest dropped first.
const MAX_RECENT = 2048;

interface Spec {
  ttl: number | undefined;
  cache: DistributedCache | undefined;
  cacheOf: ((self: unknown) => DistributedCache) | undefined;
  instanceKey: ((self: unknown) => string) | undefined;
  key: ((...args: unknown[]) => string) | undefined;
  name: string | undefined;
  version: string;
  lock: boolean | CacheLockOptions | undefined;
}

/**
 * Caches a function's results, keyed by a stable form of its arguments (object key order does
 * not matter), its name (`Class.method` for decorators) and a `version`.
 *
 * - L1 hits return without hashing or copying: the arguments' JSON text is the key.
 * - Concurrent misses of one key run the function once (per cluster with `lock`).
 * - Results go through JSON: hits and misses return the same shape (a `Date` comes back as a
 *   string), results are shared between hits (treat them as read-only), and `undefined`
 *   results are returned but not stored.
 * - With Redis down (`onBackendError: 'degrade'`), the function is called through.
 *
 * @example
 * class Service {
 *   @cached({ ttl: 3600 })
 *   async expensiveOperation(a: string, b: number) { ... }
 * }
 * const fast = cached(slowLookup, { ttl: 60, cache });
 * @typeParam F - The type of the wrapped function (for the `cached(fn, options)` form).
 */
export function cached<F extends (...args: never[]) => unknown>(
  fn: F,
  options?: CachedOptions<Parameters<F>>,
): CachedFunction<F>;
export function cached<Args extends unknown[] = unknown[]>(
  options?: CachedOptions<Args>,
): CachedDecorator;
export function cached(...a: unknown[]): unknown {
  const [first, second, third] = a;
  if (
    a.length === 3 &&
    isDescriptor(third) &&
    (typeof second === 'string' || typeof second === 'symbol') &&
    ((typeof first === 'object' && first !== null) || typeof first === 'function')
  ) {
    // Bare `@cached` (legacy), on an instance method (prototype) or a static one (class).
    decorateLegacy(first, second, third, readSpec(undefined));
    return undefined;
  }
  if (typeof first === 'function') {
    if (isMethodContext(second)) {
      // Bare `@cached` (TC39).
      return decorateTc39(first as Method, second, readSpec(undefined));
    }
    return wrapFunction(first as Method, readSpec(second));
  }
  const spec = readSpec(first);
  const decorator = (target: unknown, ctxOrKey: unknown, descriptor?: unknown): unknown => {
    if (typeof target === 'function' && isMethodContext(ctxOrKey)) {
      return decorateTc39(target as Method, ctxOrKey, spec);
    }
    if (
      typeof target === 'object' &&
      target !== null &&
      (typeof ctxOrKey === 'string' || typeof ctxOrKey === 'symbol') &&
      isDescriptor(descriptor)
    ) {
      decorateLegacy(target, ctxOrKey, descriptor, spec);
      return undefined;
    }
    if (typeof target === 'function' && isDescriptor(descriptor)) {
      // Legacy decorator on a static method: target is the class itself.
      decorateLegacy(target, ctxOrKey as string | symbol, descriptor, spec);
      return undefined;
    }
    const kind = (ctxOrKey as { kind?: unknown } | undefined)?.kind;
    throw new ValidationError(
      `@cached decorates methods only${typeof kind === 'string' ? `, not a ${kind}` : ''}`,
      { option: 'cached' },
    );
  };
  return decorator;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

function isMethodContext(v: unknown): v is ClassMethodDecoratorContext {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as { kind?: unknown }).kind === 'method' &&
    'name' in v
  );
}

function isDescriptor(v: unknown): v is PropertyDescriptor {
  return (
    typeof v === 'object' &&
    v !== null &&
    ('value' in v || 'get' in v || 'set' in v) &&
    ('configurable' in v || 'enumerable' in v || 'writable' in v)
  );
}

function readSpec(o: unknown): Spec {
  if (o !== undefined && (typeof o !== 'object' || o === null)) {
    throw new ValidationError(`cached options must be an object, received ${describeValue(o)}`, {
      option: 'options',
    });
  }
  const opts = (o ?? {}) as CachedOptions;
  const cacheOf = typeof opts.cache === 'function' ? opts.cache : undefined;
  if (opts.cache !== undefined && cacheOf === undefined && !isDistributedCache(opts.cache)) {
    throw new ValidationError(
      `cache must be a DistributedCache or a function of the instance returning one, received ${describeValue(opts.cache)}`,
      { option: 'cache' },
    );
  }
  if (opts.instanceKey !== undefined) assertFunction(opts.instanceKey, 'instanceKey');
  if (opts.key !== undefined) assertFunction(opts.key, 'key');
  if (opts.name !== undefined) validateId(opts.name, 'name', 200);
  const v = opts.version ?? 1;
  if (typeof v !== 'string' && typeof v !== 'number') {
    throw new ValidationError(`version must be a string or number, received ${describeValue(v)}`, {
      option: 'version',
    });
  }
  const version = validateId(String(v), 'version', 64);
  // Bad ttl or lock fails at decoration time, not on the first call.
  if (opts.ttl !== undefined) assertDuration(opts.ttl, 'ttl');
  if (opts.lock !== undefined) resolveLock(opts.lock, 'lock');
  return {
    ttl: opts.ttl,
    cache: cacheOf === undefined ? (opts.cache as DistributedCache | undefined) : undefined,
    cacheOf,
    instanceKey: opts.instanceKey,
    key: opts.key as ((...args: unknown[]) => string) | undefined,
    name: opts.name,
    version,
    lock: opts.lock,
  };
}

/**
 * The shared core of every form. `resolveName` is called once, on the first call, with that
 * call's `this` (decorators learn the class name only then).
 */
function makeCaller(
  fn: Method,
  spec: Spec,
  resolveName: (self: unknown) => string,
): (this: unknown, ...args: unknown[]) => Promise<unknown> {
  const cacheOf = spec.cacheOf;
  if (cacheOf !== undefined) {
    // One caller (key base, L1 memo) per cache the instances hand out.
    const callers = new WeakMap<
      DistributedCache,
      (this: unknown, ...args: unknown[]) => Promise<unknown>
    >();
    return function cachedByInstance(this: unknown, ...args: unknown[]): Promise<unknown> {
      let c: unknown;
      try {
        c = cacheOf(this);
      } catch (e) {
        return Promise.reject(e);
      }
      if (!isDistributedCache(c)) {
        return Promise.reject(
          new ValidationError(
            `the cache function returned ${describeValue(c)}, not a DistributedCache`,
            { option: 'cache' },
          ),
        );
      }
      let call = callers.get(c);
      if (call === undefined) {
        call = makeCaller(fn, { ...spec, cache: c, cacheOf: undefined }, resolveName);
        callers.set(c, call);
      }
      return call.apply(this, args);
    };
  }
  const instanceKey = spec.instanceKey;
  // The cache is reached only through its internal view (see internal.ts).
  let target: CachedTarget | undefined;
  let base = '';
  let ttl = 0;
  let lock: ResolvedLock | undefined;
  // The registry's version when the default cache was taken: a new default is picked up.
  let seen = -1;
  const userKey = spec.key;

  const setup = (self: unknown): CachedTarget => {
    const t = targetOf(spec.cache ?? cacheRegistry.default()) as CachedTarget;
    seen = cacheRegistry.version;
    target = t;
    ttl = t.ttlOf(spec.ttl);
    lock = t.lockOf(spec.lock, 'lock');
    const name = spec.name ?? resolveName(self);
    base = `${t.prefix}cached:${name}:v${spec.version}:`;
    return t;
  };

  const fullKeyOf = (t: CachedTarget, text: string): string => {
    if (userKey !== undefined) return t.prefix + text;
    return text.length <= MAX_INLINE_ARGS ? base + text : `${base}#${sha256Hex(text)}`;
  };

  // Argument text -> the in-process entry last found for it. A hit then costs one Map lookup
  // on the arguments' JSON, like a hand-written memo, instead of building the full key (a
  // concatenation the LRU must flatten and hash). The entries are the LRU's own; it marks them
  // dead when it drops them (and a dead entry lets go of its text), and TTLs are checked here too.
  const recent = new Map<string, LocalEntry>();
  let recentOf: LRUCache<string, LocalEntry> | undefined;

  return function cachedCall(this: unknown, ...args: unknown[]): Promise<unknown> {
    let t = target;
    // The default cache may be replaced (setDefaultCache, or closed); a given one is used as is.
    if (
      t === undefined ||
      (spec.cache === undefined && (t.isClosed || seen !== cacheRegistry.version))
    ) {
      t = setup(this);
    }
    let text: string;
    try {
      text =
        userKey !== undefined
          ? validateId(userKey.apply(this, args), 'key() result')
          : argsKeyText(args);
      if (instanceKey !== undefined) {
        text = `${validateId(instanceKey(this), 'instanceKey() result', 200)}:${text}`;
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const hot = t.hot;
    if (hot !== undefined) {
      if (hot !== recentOf) {
        recent.clear();
        recentOf = hot;
      }
      let e = recent.get(text);
      if (e !== undefined) {
        if (e.alive && e.expiresAt > performance.now()) {
          // Touch the LRU now and then, so an entry hit only through here is not evicted as idle.
          if ((++e.hits & 31) === 0) hot.get(e.key);
          t.localHits.inc();
          return Promise.resolve(e.decoded ? e.value : t.decodeEntry(e));
        }
        recent.delete(text);
      }
      const k = fullKeyOf(t, text);
      e = hot.get(k);
      if (e !== undefined) {
        if (text.length <= MAX_INLINE_ARGS) {
          if (recent.size >= MAX_RECENT) recent.delete(recent.keys().next().value as string);
          recent.set(text, e);
        }
        t.localHits.inc();
        return Promise.resolve(e.decoded ? e.value : t.decodeEntry(e));
      }
      return t.cachedMiss(k, () => fn.apply(this, args), ttl, lock);
    }
    return t.cachedMiss(fullKeyOf(t, text), () => fn.apply(this, args), ttl, lock);
  };
}

function wrapFunction(fn: Method, spec: Spec): unknown {
  // Anonymous functions are named by a hash of their source: stable across processes that run
  // the same code, distinct for different functions.
  const name = fn.name ? fn.name : `anonymous#${sha256Hex(fn.toString()).slice(0, 12)}`;
  const call = makeCaller(fn, spec, () => name);
  Object.defineProperty(call, 'name', { value: fn.name || 'cached' });
  return call;
}

function methodName(key: string | symbol): string {
  return typeof key === 'symbol' ? (key.description ?? 'symbol') : key;
}

function decorateTc39(fn: Method, context: ClassMethodDecoratorContext, spec: Spec): Method {
  if (context.private) {
    throw new ValidationError('@cached cannot decorate a private (#) method', { option: 'cached' });
  }
  const method = methodName(context.name);
  let className: string | undefined;
  let replacement: Method;
  // The class name is not in a TC39 method context; find the class whose prototype (or, for a
  // static method, the class itself) holds this very replacement, so subclasses share the
  // base class's entries.
  const owner = (self: unknown): string => {
    if (context.static) return (self as { name?: string } | undefined)?.name || 'anonymous';
    for (
      let p: object | null =
        self === undefined || self === null ? null : Object.getPrototypeOf(self);
      p !== null;
      p = Object.getPrototypeOf(p)
    ) {
      if (Object.getOwnPropertyDescriptor(p, context.name)?.value === replacement) {
        return (p as { constructor?: { name?: string } }).constructor?.name || 'anonymous';
      }
    }
    return 'anonymous';
  };
  context.addInitializer(function (this: unknown) {
    className ??= owner(this);
  });
  replacement = makeCaller(fn, spec, (self) => {
    className ??= owner(self);
    return `${className}.${method}`;
  });
  return replacement;
}

function decorateLegacy(
  target: object,
  key: string | symbol,
  descriptor: PropertyDescriptor,
  spec: Spec,
): void {
  const fn = descriptor.value as unknown;
  if (typeof fn !== 'function') {
    throw new ValidationError(`@cached decorates methods only; ${methodName(key)} is not one`, {
      option: 'cached',
    });
  }
  const className =
    typeof target === 'function'
      ? (target as { name?: string }).name || 'anonymous'
      : (target as { constructor?: { name?: string } }).constructor?.name || 'anonymous';
  descriptor.value = makeCaller(fn as Method, spec, () => `${className}.${methodName(key)}`);
}
