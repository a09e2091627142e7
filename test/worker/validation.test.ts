/** Bad input gets typed errors that name the option; nothing is written. */
import { afterEach, describe, expect, it } from 'vitest';
import {
  isBackendUnavailableError,
  isClosedError,
  isNotFoundError,
  isSerializationError,
  isValidationError,
  isValueTooLargeError,
} from '../../src/core/errors.js';
import { BackgroundWorker, TaskQueue } from '../../src/worker/index.js';
import { freePort } from '../harness/env.js';

const opened: TaskQueue[] = [];
function queue(opts: ConstructorParameters<typeof TaskQueue>[0] = {}): TaskQueue {
  const q = new TaskQueue({ name: `v-${Math.random().toString(36).slice(2)}`, ...opts });
  opened.push(q);
  return q;
}
afterEach(async () => {
  for (const q of opened.splice(0)) await q.close();
});

function optionOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    return (e as { option?: string }).option;
  }
  throw new Error('expected a ValidationError');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('TaskQueue input', () => {
  it('rejects invalid constructor options', () => {
    expect(optionOf(() => new TaskQueue({ name: '' }))).toBe('name');
    expect(optionOf(() => new TaskQueue({ name: 'x'.repeat(201) }))).toBe('name');
    expect(optionOf(() => new TaskQueue({ resultTtl: -1 }))).toBe('resultTtl');
    expect(optionOf(() => new TaskQueue({ resultTtl: Number.NaN }))).toBe('resultTtl');
    expect(optionOf(() => new TaskQueue({ redis: 'http://localhost:6379' }))).toBe('redis');
    expect(optionOf(() => new TaskQueue({ maxDataBytes: 0 }))).toBe('maxValueBytes');
    expect(optionOf(() => new TaskQueue({ backend: {} as unknown as TaskQueue['backend'] }))).toBe(
      'backend',
    );
  });

  it('rejects data JSON cannot hold and oversized data', async () => {
    const q = queue({ maxDataBytes: 64 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [() => 1, 10n, cyclic, undefined, Symbol('s')]) {
      expect(isSerializationError(await rejection(q.submitTask(bad)))).toBe(true);
    }
    const big = await rejection(q.submitTask({ text: 'x'.repeat(100) }));
    expect(isValueTooLargeError(big)).toBe(true);
    const bulk = await rejection(q.submitTasks([{ ok: 1 }, { text: 'y'.repeat(100) }]));
    expect(isValueTooLargeError(bulk)).toBe(true);
    // Nothing was written by the failed bulk call.
    expect((await q.stats()).queued).toBe(0);
  });

  it('rejects invalid submit options, naming them', async () => {
    const q = queue();
    const opt = async (o: Record<string, unknown>) =>
      ((await rejection(q.submitTask({}, o as never))) as { option?: string }).option;
    expect(await opt({ taskId: '' })).toBe('taskId');
    expect(await opt({ taskId: 42 })).toBe('taskId');
    expect(await opt({ taskId: 'a\u0000b' })).toBe('taskId');
    expect(await opt({ delay: -1 })).toBe('delay');
    expect(await opt({ priority: 1.5 })).toBe('priority');
    expect(await opt({ priority: -1 })).toBe('priority');
    expect(await opt({ attempts: 0 })).toBe('attempts');
    expect(await opt({ timeout: 0 })).toBe('timeout');
    const notArray = await rejection(q.submitTasks('nope' as unknown as unknown[]));
    expect((notArray as { option?: string }).option).toBe('tasks');
    const short = await rejection(q.submitTasks([1, 2], { taskIds: ['only-one'] }));
    expect((short as { option?: string }).option).toBe('taskIds');
    expect(await q.submitTasks([])).toEqual([]);
  });

  it('rejects bad ids and unknown ids with typed errors', async () => {
    const q = queue();
    expect(isValidationError(await rejection(q.getTask(42 as unknown as string)))).toBe(true);
    expect(isValidationError(await rejection(q.getTask('x'.repeat(600))))).toBe(true);
    expect(await q.getTask('unknown')).toBeNull();
    expect(isNotFoundError(await rejection(q.cancelTask('unknown')))).toBe(true);
    expect(isNotFoundError(await rejection(q.waitForResult('unknown')))).toBe(true);
    const id = await q.submitTask({});
    const bad = await rejection(q.waitForResult(id, { timeout: -1 }));
    expect((bad as { option?: string }).option).toBe('timeout');
    expect(isValidationError(await rejection(q.redrive('x' as unknown as string[])))).toBe(true);
    expect(isValidationError(await rejection(q.redrive([''])))).toBe(true);
    expect(isValidationError(await rejection(q.deadLetters({ limit: 0 })))).toBe(true);
  });

  it('refuses calls after close', async () => {
    const q = queue();
    await q.close();
    expect(isClosedError(await rejection(q.submitTask({})))).toBe(true);
    expect(isClosedError(await rejection(q.getTask('a')))).toBe(true);
  });

  it('reports an unreachable Redis as BackendUnavailableError', async () => {
    const port = await freePort();
    const q = queue({ redis: `redis://127.0.0.1:${port}`, redisOptions: { connectTimeout: 1 } });
    const e = await rejection(q.submitTask({ a: 1 }));
    expect(isBackendUnavailableError(e)).toBe(true);
  });
});

describe('BackgroundWorker input', () => {
  it('rejects invalid options, naming them', () => {
    const handler = () => null;
    const opt = (o: Record<string, unknown>) =>
      optionOf(() => new BackgroundWorker({ handler, ...o } as never));
    expect(optionOf(() => new BackgroundWorker({} as never))).toBe('handler');
    expect(opt({ numWorkers: 0 })).toBe('numWorkers');
    expect(opt({ numWorkers: 2.5 })).toBe('numWorkers');
    expect(opt({ attempts: 0 })).toBe('attempts');
    expect(opt({ timeout: -1 })).toBe('timeout');
    expect(opt({ visibilityTimeout: 0 })).toBe('visibilityTimeout');
    expect(opt({ backoff: { type: 'linear' } })).toBe('backoff.type');
    expect(opt({ backoff: { delay: -1 } })).toBe('backoff.delay');
    expect(opt({ backoff: { jitter: 'yes' } })).toBe('backoff.jitter');
    expect(opt({ queue: 42 })).toBe('queue');
    expect(opt({ queue: '' })).toBe('name');
  });

  it('fails a task whose result JSON cannot hold, without retrying', async () => {
    const q = queue();
    let calls = 0;
    const w = new BackgroundWorker({
      queue: q,
      attempts: 3,
      handler: () => {
        calls++;
        return { big: 10n };
      },
    });
    await w.start();
    try {
      const id = await q.submitTask({});
      await expect(q.waitForResult(id, { timeout: 5 })).rejects.toThrow(/bigint/);
      expect(calls).toBe(1);
      expect((await q.getTask(id))?.errorName).toBe('SerializationError');
    } finally {
      await w.stop();
    }
  });

  it('ctx.progress rejects a non-number', async () => {
    const q = queue();
    let err: unknown;
    const w = new BackgroundWorker({
      queue: q,
      handler: async (_d, ctx) => {
        err = await rejection(ctx.progress('half' as unknown as number));
        return 1;
      },
    });
    await w.start();
    try {
      await q.waitForResult(await q.submitTask({}), { timeout: 5 });
      expect(isValidationError(err)).toBe(true);
    } finally {
      await w.stop();
    }
  });
});
