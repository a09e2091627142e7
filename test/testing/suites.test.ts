/**
 * azscale/testing itself: the suites check their arguments at collection, find the vitest API,
 * and fail for a store that breaks its contract (a child vitest runs broken stores through them).
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as vitest from 'vitest';
import { describe, expect, it } from 'vitest';
import { MemoryCacheStore } from '../../src/cache/index.js';
import { isMissingDependencyError, isValidationError } from '../../src/core/errors.js';
import {
  describeBreakerStore,
  describeCacheStore,
  describeQueueBackend,
  describeSpendStore,
} from '../../src/testing/index.js';
import { ROOT } from '../examples/helpers.js';

function thrown(fn: () => unknown): { code?: string; option?: string; context?: unknown } {
  try {
    fn();
  } catch (e) {
    return e as { code?: string; option?: string };
  }
  throw new Error('expected a throw');
}

describe('suite arguments', () => {
  it.each([
    ['name', () => describeCacheStore(42 as never, () => new MemoryCacheStore())],
    ['name', () => describeSpendStore('', () => ({}) as never)],
    ['factory', () => describeBreakerStore('x', 'not a function' as never)],
    ['factory', () => describeQueueBackend('x', undefined as never)],
    ['options', () => describeCacheStore('x', () => new MemoryCacheStore(), [] as never)],
    [
      'timeoutMs',
      () => describeCacheStore('x', () => new MemoryCacheStore(), { timeoutMs: Number.NaN }),
    ],
    ['timeoutMs', () => describeCacheStore('x', () => new MemoryCacheStore(), { timeoutMs: -1 })],
    [
      'timeoutMs',
      () => describeCacheStore('x', () => new MemoryCacheStore(), { timeoutMs: 2 ** 40 }),
    ],
  ])('a bad %s is a ValidationError naming it, at collection', (option, call) => {
    const e = thrown(call);
    expect(isValidationError(e)).toBe(true);
    expect(e.option).toBe(option);
  });

  it('options.vitest that is not the vitest module is a MissingDependencyError naming vitest', () => {
    const e = thrown(() =>
      describeCacheStore('x', () => new MemoryCacheStore(), { vitest: { describe: 1 } as never }),
    );
    expect(isMissingDependencyError(e)).toBe(true);
    expect(e.context).toMatchObject({ package: 'vitest', option: 'vitest' });
  });
});

// The suite registered with an explicitly passed API (options.vitest) runs like any other.
describeCacheStore('memory, vitest passed explicitly', () => new MemoryCacheStore(), { vitest });

describe('the suites fail for broken stores', () => {
  it('each broken rule fails its test; the same suites pass on the real memory stores', async () => {
    const out = join(tmpdir(), `azs-suites-${process.pid}-${Date.now()}.json`);
    try {
      await promisify(execFile)(
        process.execPath,
        [
          join(ROOT, 'node_modules/vitest/vitest.mjs'),
          'run',
          '--config',
          'test/testing/fixtures/broken-stores.config.ts',
          '--reporter=json',
          `--outputFile=${out}`,
        ],
        { cwd: ROOT, env: { ...process.env, CI: '' }, maxBuffer: 64 * 1024 * 1024 },
      ).catch((e: { code?: number }) => {
        // Exit code 1: tests failed, as they must. Anything else is a crash of the run.
        if (e.code !== 1) throw e;
      });
      const report = JSON.parse(readFileSync(out, 'utf8')) as {
        testResults: {
          assertionResults: { ancestorTitles: string[]; title: string; status: string }[];
        }[];
      };
      const results = report.testResults.flatMap((f) => f.assertionResults);
      const failed = (suite: string) =>
        results
          .filter((r) => r.ancestorTitles[0] === suite && r.status === 'failed')
          .map((r) => r.title);
      const control = results.filter((r) => (r.ancestorTitles[0] ?? '').endsWith(': control'));
      expect(control.length).toBeGreaterThan(40);
      expect(control.filter((r) => r.status !== 'passed').map((r) => r.title)).toEqual([]);
      expect(failed('CacheStore contract: broken: no lock')).toEqual([
        'setIfAbsent / deleteIfEquals behave as a lock, one winner among concurrent takers',
      ]);
      expect(failed('SemaphoreStore contract: broken: no limit')).toEqual(
        expect.arrayContaining(['never grants more than the limit to concurrent acquirers']),
      );
      expect(failed('SessionStore contract: broken: blind compare-and-set')).toEqual(
        expect.arrayContaining([
          'store: compareAndSet writes only over the exact expected value',
          'concurrent updateSession calls lose no update',
        ]),
      );
    } finally {
      rmSync(out, { force: true });
    }
  });
});
