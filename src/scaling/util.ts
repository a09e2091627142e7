import { ValidationError } from '../core/errors.js';
import { type NumberRule, assertNumber } from '../core/validate.js';

/**
 * {@link assertNumber} whose error names the option plainly (`cpuUsage`) and states its unit in
 * the message ("cpuUsage (percent) must be ..."), so `e.option` can be matched exactly.
 */
export function assertQuantity(
  value: unknown,
  option: string,
  unit: string,
  rule: NumberRule = {},
): number {
  try {
    return assertNumber(value, `${option} (${unit})`, rule);
  } catch (e) {
    if (e instanceof ValidationError) {
      throw new ValidationError(e.message, { option, context: { unit } });
    }
    throw e;
  }
}
