/**
 * Where the suites get `describe`/`it`/`expect`. vitest is ESM-only and its CommonJS entry
 * throws, so neither build of this package may import it: the suites take the API of the vitest
 * worker they run in (the same object `import * as vitest from 'vitest'` gives a test file), or
 * the one the caller passes.
 */
import type { ExpectStatic, SuiteAPI, TestAPI } from 'vitest';
import { MissingDependencyError } from '../core/errors.js';
import { assertFunction, assertNumber, assertObject, assertString } from '../core/validate.js';

/**
 * The part of vitest the suites use. Pass `import * as vitest from 'vitest'` as
 * {@link SuiteOptions.vitest} to pick the API explicitly.
 */
export interface TestApi {
  /** vitest's `describe`. */
  describe: unknown;
  /** vitest's `it`. */
  it: unknown;
  /** vitest's `expect`. */
  expect: unknown;
  /** vitest's `afterAll`. */
  afterAll: unknown;
  /** vitest's `afterEach`. */
  afterEach: unknown;
}

/** Options every `describeXxx` suite accepts. */
export interface SuiteOptions {
  /**
   * The vitest API to register the tests with.
   * @default the API of the vitest worker the calling test file runs in
   * @example import * as vitest from 'vitest';
   * describeCacheStore('mine', () => new MyStore(), { vitest });
   */
  vitest?: TestApi;
  /**
   * Milliseconds one test may run (a remote backend on a loaded CI machine needs more than
   * vitest's 5 s default).
   * @default 60000
   */
  timeoutMs?: number;
}

/** @internal The typed API the suites call. */
export interface Vitest {
  describe: SuiteAPI;
  it: TestAPI;
  expect: ExpectStatic;
  afterAll: (fn: () => unknown, timeout?: number) => void;
  afterEach: (fn: () => unknown, timeout?: number) => void;
}

const API_KEYS = ['describe', 'it', 'expect', 'afterAll', 'afterEach'] as const;

function usable(x: unknown): x is Vitest {
  if (typeof x !== 'object' || x === null) return false;
  const o = x as Record<string, unknown>;
  return API_KEYS.every((k) => typeof o[k] === 'function');
}

/**
 * @internal The API to register tests with: the caller's, else the running vitest worker's
 * (vitest publishes its module namespace as `globalThis.__vitest_index__` in every worker, for
 * in-source tests).
 */
export function vitestApi(options: SuiteOptions | undefined): Vitest {
  const given = options?.vitest;
  if (given !== undefined) {
    if (usable(given)) return given;
    throw new MissingDependencyError(
      'azscale/testing: options.vitest must be the vitest module (import * as vitest from "vitest")',
      { context: { package: 'vitest', subpath: 'azscale/testing', option: 'vitest' } },
    );
  }
  const worker = (globalThis as { __vitest_index__?: unknown }).__vitest_index__;
  if (usable(worker)) return worker;
  throw new MissingDependencyError(
    'azscale/testing: the suites register vitest tests, so call them from a test file that vitest runs (or pass options.vitest)',
    { context: { package: 'vitest', subpath: 'azscale/testing' } },
  );
}

/** @internal What every suite starts with: its checked arguments and the API to use. */
export interface Suite {
  /** The vitest API. */
  t: Vitest;
  /** Milliseconds per test. */
  timeout: number;
}

/**
 * @internal Checks the arguments every `describeXxx` takes (so a mistake fails at collection
 * with the option's name, not as a confusing test failure) and finds the vitest API.
 */
export function prepareSuite(name: unknown, factory: unknown, options: unknown): Suite {
  assertString(name, 'name');
  assertFunction(factory as () => unknown, 'factory');
  if (options !== undefined) assertObject(options, 'options');
  const o = options as SuiteOptions | undefined;
  const timeout =
    o?.timeoutMs === undefined
      ? 60_000
      : assertNumber(o.timeoutMs, 'timeoutMs', { positive: true, max: 2 ** 31 - 1 });
  return { t: vitestApi(o), timeout };
}
