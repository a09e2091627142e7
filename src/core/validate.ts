import { ValidationError, describeValue } from './errors.js';

/**
 * Argument checks used at the public edge of every module. Each throws a {@link ValidationError}
 * that names the option, says what was expected and what was received; internals then trust the
 * validated value.
 */

/** Options for {@link assertNumber}. */
export interface NumberRule {
  /** Require an integer. */
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** Require a value strictly greater than zero. */
  positive?: boolean;
}

/** Throws unless `value` is a finite number that satisfies `rule`. */
export function assertNumber(value: unknown, option: string, rule: NumberRule = {}): number {
  const what = [
    rule.integer ? 'an integer' : 'a finite number',
    rule.positive ? '> 0' : '',
    rule.min !== undefined ? `>= ${rule.min}` : '',
    rule.max !== undefined ? `<= ${rule.max}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    (rule.integer && !Number.isInteger(value)) ||
    (rule.positive && value <= 0) ||
    (rule.min !== undefined && value < rule.min) ||
    (rule.max !== undefined && value > rule.max)
  ) {
    throw new ValidationError(`${option} must be ${what}, received ${describeValue(value)}`, {
      option,
    });
  }
  return value;
}

/** Like {@link assertNumber} but `undefined` passes through (for optional options). */
export function optionalNumber(
  value: unknown,
  option: string,
  rule: NumberRule = {},
): number | undefined {
  return value === undefined ? undefined : assertNumber(value, option, rule);
}

/** Throws unless `value` is a positive duration in seconds. */
export function assertSeconds(value: unknown, option: string): number {
  return assertNumber(value, `${option} (seconds)`, { positive: true });
}

/**
 * Throws unless `value` is a function.
 * @typeParam T - The function type `value` is narrowed to.
 */
export function assertFunction<T extends (...args: never[]) => unknown>(
  value: unknown,
  option: string,
): T {
  if (typeof value !== 'function') {
    throw new ValidationError(`${option} must be a function, received ${describeValue(value)}`, {
      option,
    });
  }
  return value as T;
}

/** Throws unless `value` is a string (optionally non-empty). */
export function assertString(value: unknown, option: string, nonEmpty = true): string {
  if (typeof value !== 'string' || (nonEmpty && value.length === 0)) {
    throw new ValidationError(
      `${option} must be a ${nonEmpty ? 'non-empty ' : ''}string, received ${describeValue(value)}`,
      { option },
    );
  }
  return value;
}

/** Throws unless `value` is one of `allowed`. */
export function assertOneOf<T extends string>(
  value: unknown,
  option: string,
  allowed: readonly T[],
): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ValidationError(
      `${option} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, received ${describeValue(value)}`,
      { option },
    );
  }
  return value as T;
}

/** Throws unless `value` is a plain object (or undefined when `optional`). */
export function assertObject(
  value: unknown,
  option: string,
  optional = false,
): Record<string, unknown> | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${option} must be an object, received ${describeValue(value)}`, {
      option,
    });
  }
  return value as Record<string, unknown>;
}

/** `value` if it is a boolean; otherwise a `ValidationError` naming `option`. */
export function assertBoolean(value: unknown, option: string): boolean {
  if (typeof value !== 'boolean') {
    throw new ValidationError(`${option} must be a boolean, received ${describeValue(value)}`, {
      option,
    });
  }
  return value;
}
