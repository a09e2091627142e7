import { describe, expect, it } from 'vitest';
import {
  AzscaleError,
  BackendUnavailableError,
  BudgetExceededError,
  CircuitOpenError,
  LimitExceededError,
  SerializationError,
  TimeoutError,
  ValidationError,
  ValueTooLargeError,
  isAzscaleError,
  isBackendUnavailableError,
  isSerializationError,
  isValidationError,
  isValueTooLargeError,
} from '../../src/core/errors.js';

describe('errors', () => {
  it('carry a stable code, context and cause', () => {
    const cause = new Error('boom');
    const e = new BackendUnavailableError('redis down', { cause, context: { target: 'x' } });
    expect(e.code).toBe('AZS_BACKEND_UNAVAILABLE');
    expect(e.name).toBe('BackendUnavailableError');
    expect(e.cause).toBe(cause);
    expect(e.context).toEqual({ target: 'x' });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(AzscaleError);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e).not.toBeInstanceOf(ValidationError);
  });

  it('each class has its own code', () => {
    const codes = [
      new ValidationError('x').code,
      new SerializationError('x').code,
      new TimeoutError('x').code,
      new CircuitOpenError('x').code,
      new LimitExceededError('x').code,
      new BudgetExceededError('x').code,
    ];
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => c.startsWith('AZS_'))).toBe(true);
  });

  it('guards work on a copy of the class from another module instance (ESM + CJS)', () => {
    // Simulate the other copy: an object branded the same way but not built by our classes.
    const foreign = Object.assign(new Error('from the CJS copy'), {
      code: 'AZS_VALIDATION',
      kinds: ['AZS_VALIDATION', 'AZS_ERROR'],
      [Symbol.for('azscale.error')]: true,
    });
    expect(isAzscaleError(foreign)).toBe(true);
    expect(isValidationError(foreign)).toBe(true);
    expect(foreign instanceof ValidationError).toBe(true);
    expect(foreign instanceof BackendUnavailableError).toBe(false);
    expect(isAzscaleError(new Error('plain'))).toBe(false);
    expect(isAzscaleError(null)).toBe(false);
  });

  it('an oversized value is both a validation and a serialization error', () => {
    const e = new ValueTooLargeError('value', 2000, 1000);
    expect(e).toBeInstanceOf(ValidationError);
    expect(e).toBeInstanceOf(SerializationError);
    expect(isValidationError(e) && isSerializationError(e) && isValueTooLargeError(e)).toBe(true);
    expect(e.message).toContain('2000');
    expect(e.option).toBe('maxValueBytes');
    expect(isBackendUnavailableError(e)).toBe(false);
  });

  it('LimitExceededError exposes retryAfter in seconds', () => {
    const e = new LimitExceededError('slow down', { retryAfter: 2.5 });
    expect(e.retryAfter).toBe(2.5);
    expect(e.context.retryAfter).toBe(2.5);
  });
});
