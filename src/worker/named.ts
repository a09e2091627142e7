import { UnknownTaskNameError, ValidationError, describeValue } from '../core/errors.js';
import { assertFunction, assertObject } from '../core/validate.js';
import { validateTaskName } from './admin.js';
import type { TaskHandler } from './types.js';

/**
 * Named tasks: a worker's `handlers` map, looked up by own property only. The map is copied into
 * a prototype-less object, so a task named `constructor`, `toString` or `__proto__` finds its
 * own handler or none, never something inherited from `Object.prototype`.
 */

/** @internal Handlers by name, without a prototype. */
// biome-ignore lint/suspicious/noExplicitAny: each name's handler takes its own data type
export type NamedHandlers = Readonly<Record<string, TaskHandler<any, any>>>;

/** @internal Validates `handlers`; at least one of it and `handler` must be given. */
export function parseHandlers(v: unknown, hasDefault: boolean): NamedHandlers {
  const out: Record<string, TaskHandler> = Object.create(null);
  if (v === undefined) {
    if (!hasDefault) {
      throw new ValidationError('handler or handlers is required, received neither', {
        option: 'handler',
      });
    }
    return out;
  }
  assertObject(v, 'handlers');
  const names = Object.keys(v as object);
  if (names.length === 0 && !hasDefault) {
    throw new ValidationError(
      `handlers must name at least one handler when handler is not given, received ${describeValue(v)}`,
      { option: 'handlers' },
    );
  }
  for (const name of names) {
    validateTaskName(name, `handlers key ${JSON.stringify(name.slice(0, 40))}`);
    out[name] = assertFunction<TaskHandler>(
      (v as Record<string, unknown>)[name],
      `handlers[${JSON.stringify(name.slice(0, 40))}]`,
    );
  }
  return out;
}

/**
 * The handler for a task of `name` (undefined: unnamed), or the error to fail it with: a named
 * task runs only with its own handler, an unnamed one only with the default.
 */
export function pickHandler<D, R>(
  handlers: NamedHandlers,
  fallback: TaskHandler<D, R> | undefined,
  name: string | undefined,
): TaskHandler<D, R> | UnknownTaskNameError {
  if (name === undefined) {
    return (
      fallback ??
      new UnknownTaskNameError('the task has no name and the worker has no default handler', {
        context: {},
      })
    );
  }
  if (Object.hasOwn(handlers, name)) return handlers[name] as TaskHandler<D, R>;
  return new UnknownTaskNameError(
    `no handler for task name ${JSON.stringify(name.slice(0, 200))}; known names: ${
      Object.keys(handlers).slice(0, 20).join(', ') || '(none)'
    }`,
    { context: { name } },
  );
}
