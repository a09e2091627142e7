import { SerializationError } from '../core/errors.js';

/**
 * Canonical text of a value for cache keys: object keys sorted (so `{a, b}` and `{b, a}` give
 * one key), `undefined` object fields dropped as JSON does, `toJSON()` honoured (Dates).
 * Values whose JSON form would silently collide with other values (Map, Set, RegExp, Promise,
 * functions, symbols, BigInt) or cannot be written at all (cycles) get a
 * {@link SerializationError} instead of a key that serves someone else's entry.
 *
 * The text is only ever hashed or compared, never parsed back.
 */
export function stableStringify(value: unknown, what = 'value'): string {
  const out: string[] = [];
  try {
    write(value, out, [], what, '$');
  } catch (e) {
    // Hostile nesting (thousands of levels) overflows the stack: a typed error, not a RangeError.
    if (e instanceof RangeError) {
      throw new SerializationError(`${what} is nested too deeply to be used in a cache key`, {
        cause: e,
      });
    }
    throw e;
  }
  return out.join('');
}

function fail(what: string, path: string, received: string): never {
  throw new SerializationError(
    `${what} cannot be used in a cache key: ${received} at ${path} has no stable JSON form`,
    { context: { path, type: received } },
  );
}

function write(v: unknown, out: string[], stack: object[], what: string, path: string): void {
  switch (typeof v) {
    case 'string':
      out.push(JSON.stringify(v));
      return;
    case 'number':
      // NaN and ±Infinity would all become `null` in JSON and collide with a real null.
      out.push(Number.isFinite(v) ? JSON.stringify(v) : `#${String(v)}`);
      return;
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'undefined':
      out.push('#undefined');
      return;
    case 'bigint':
    case 'function':
    case 'symbol':
      fail(what, path, typeof v === 'bigint' ? 'a BigInt' : `a ${typeof v}`);
  }
  if (v === null) {
    out.push('null');
    return;
  }
  const obj = v as Record<string, unknown>;
  if (stack.includes(obj)) fail(what, path, 'a circular reference');
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    let j: unknown;
    try {
      j = (obj as { toJSON: () => unknown }).toJSON();
    } catch (e) {
      throw new SerializationError(`${what}: toJSON() threw at ${path}`, { cause: e });
    }
    stack.push(obj);
    write(j, out, stack, what, path);
    stack.pop();
    return;
  }
  if (
    obj instanceof Map ||
    obj instanceof Set ||
    obj instanceof WeakMap ||
    obj instanceof WeakSet ||
    obj instanceof RegExp ||
    obj instanceof Promise
  ) {
    fail(what, path, `a ${Object.prototype.toString.call(obj).slice(8, -1)}`);
  }
  stack.push(obj);
  if (Array.isArray(obj)) {
    out.push('[');
    for (let i = 0; i < obj.length; i++) {
      if (i > 0) out.push(',');
      write(obj[i], out, stack, what, `${path}[${i}]`);
    }
    out.push(']');
  } else {
    const keys = Object.keys(obj).sort();
    out.push('{');
    let first = true;
    for (const k of keys) {
      const x = obj[k];
      if (x === undefined) continue;
      if (!first) out.push(',');
      first = false;
      out.push(JSON.stringify(k), ':');
      write(x, out, stack, what, `${path}.${k}`);
    }
    out.push('}');
  }
  stack.pop();
}

/**
 * Key text of an argument list. Lists of plain strings, finite numbers, booleans and nulls (the
 * common case) take the native `JSON.stringify` path with no extra allocation; anything else goes
 * through {@link stableStringify}. Trailing `undefined` arguments are dropped: `f(a)` and
 * `f(a, undefined)` are the same call for almost every function.
 */
export function argsKeyText(args: readonly unknown[]): string {
  const n = args.length;
  for (let i = 0; i < n; i++) {
    const a = args[i];
    const t = typeof a;
    if (t === 'string' || t === 'boolean' || a === null) continue;
    if (t === 'number' && Number.isFinite(a as number)) continue;
    return slowArgsKeyText(args);
  }
  return JSON.stringify(args);
}

function slowArgsKeyText(args: readonly unknown[]): string {
  let n = args.length;
  while (n > 0 && args[n - 1] === undefined) n--;
  return stableStringify(n === args.length ? args : args.slice(0, n), 'cached arguments');
}
