import { describe, expect, it } from 'vitest';
import {
  isTaskFailedError,
  isUnknownTaskNameError,
  isValidationError,
} from '../../src/core/errors.js';
import { BackgroundWorker } from '../../src/worker/index.js';
import { KINDS, rejection, throws, workerFixture } from './fixture.js';

describe.each(KINDS)('named tasks: %s', (kind) => {
  const { queue, worker } = workerFixture(kind, { namePrefix: 'wn', prefix: 'azs-test-worker:' });

  it('runs each task with the handler of its name; unnamed tasks use the default handler', async () => {
    const q = queue();
    const w = worker(q, {
      handler: (d: unknown) => ({ by: 'default', d }),
      handlers: {
        add: (d: { a: number; b: number }) => d.a + d.b,
        upper: async (d: string) => d.toUpperCase(),
      },
    });
    await w.start();
    const a = await q.submitTask({ a: 2, b: 3 }, { name: 'add' });
    const u = await q.submitTask('hi', { name: 'upper' });
    const plain = await q.submitTask(7);
    const bulk = await q.submitTasks(['x', 'y'], { name: 'upper' });
    expect(await q.waitForResult(a, { timeout: 10 })).toBe(5);
    expect(await q.waitForResult(u, { timeout: 10 })).toBe('HI');
    expect(await q.waitForResult(plain, { timeout: 10 })).toEqual({ by: 'default', d: 7 });
    expect(await Promise.all(bulk.map((id) => q.waitForResult(id, { timeout: 10 })))).toEqual([
      'X',
      'Y',
    ]);
    expect(await q.getTask(a)).toMatchObject({ id: a, name: 'add', status: 'completed' });
    expect((await q.getTask(plain))?.name).toBeUndefined();
    const listed = await q.listTasks({ status: 'completed' });
    expect(listed.find((t) => t.id === u)?.name).toBe('upper');
  });

  it('a name without a handler fails at once with UnknownTaskNameError and is dead-lettered', async () => {
    const q = queue();
    const dead: unknown[] = [];
    let ran = 0;
    const w = worker(q, {
      attempts: 5,
      handler: () => {
        ran++;
        return 'default';
      },
      handlers: {
        known: () => 'known',
      },
    });
    w.on('deadLettered', (e) => dead.push(e.error));
    await w.start();
    const id = await q.submitTask({ x: 1 }, { name: 'unknown' });
    const e = await rejection(q.waitForResult(id, { timeout: 10 }));
    expect(isTaskFailedError(e)).toBe(true);
    const t = await q.getTask(id);
    expect(t).toMatchObject({
      status: 'failed',
      attempts: 1,
      name: 'unknown',
      errorName: 'UnknownTaskNameError',
    });
    expect(t?.error).toContain('unknown');
    expect((await q.deadLetters()).map((d) => d.id)).toEqual([id]);
    expect(dead).toHaveLength(1);
    expect(isUnknownTaskNameError(dead[0])).toBe(true);
    // The default handler does not take named tasks.
    expect(ran).toBe(0);
    // Not lost: a redrive after deploying a handler runs it.
    await w.stop();
    const w2 = worker(q, { handlers: { unknown: () => 'now known' } });
    await w2.start();
    expect(await q.redrive([id])).toBe(1);
    expect(await q.waitForResult(id, { timeout: 10 })).toBe('now known');
  });

  it('an unnamed task fails when the worker has only named handlers', async () => {
    const q = queue();
    const w = worker(q, { handlers: { a: () => 1 } });
    await w.start();
    const id = await q.submitTask('x');
    expect(isTaskFailedError(await rejection(q.waitForResult(id, { timeout: 10 })))).toBe(true);
    expect(await q.getTask(id)).toMatchObject({ attempts: 1, errorName: 'UnknownTaskNameError' });
  });

  it('prototype names reach only own handlers', async () => {
    const q = queue();
    const own: Record<string, (d: unknown) => unknown> = { constructor: () => 'own constructor' };
    Object.defineProperty(own, '__proto__', {
      value: () => 'own proto',
      enumerable: true,
      configurable: true,
      writable: true,
    });
    const w = worker(q, { handlers: own });
    await w.start();
    const ctor = await q.submitTask(1, { name: 'constructor' });
    const proto = await q.submitTask(1, { name: '__proto__' });
    const inherited = await q.submitTask(1, { name: 'toString' });
    const hasOwn = await q.submitTask(1, { name: 'hasOwnProperty' });
    expect(await q.waitForResult(ctor, { timeout: 10 })).toBe('own constructor');
    expect(await q.waitForResult(proto, { timeout: 10 })).toBe('own proto');
    for (const id of [inherited, hasOwn]) {
      await rejection(q.waitForResult(id, { timeout: 10 }));
      expect((await q.getTask(id))?.errorName).toBe('UnknownTaskNameError');
    }
  });

  it('names are validated: non-empty string, at most 200 characters, no control characters', async () => {
    const q = queue();
    for (const name of ['', 'a\nb', 'x\u0000', 'a'.repeat(201), 5, null, {}, ['a']]) {
      const e = await rejection(q.submitTask(1, { name } as never));
      expect(isValidationError(e)).toBe(true);
      expect(isValidationError(await rejection(q.submitTasks([1], { name } as never)))).toBe(true);
    }
    expect(await q.stats()).toMatchObject({ queued: 0 });
    const ok = await q.submitTask(1, { name: 'ü-名前 with spaces/and:colons' });
    expect((await q.getTask(ok))?.name).toBe('ü-名前 with spaces/and:colons');
  });

  it('the worker needs handler or handlers, and every handler must be a function', () => {
    const q = queue();
    const bad: unknown[] = [
      {},
      { handlers: {} },
      { handlers: null },
      { handlers: [] },
      { handlers: { a: 'not a function' } },
      { handlers: { '': () => 1 } },
      { handlers: { 'a\u0007': () => 1 } },
      { handler: () => 1, handlers: { a: 1 } },
    ];
    for (const o of bad) {
      const e = throws(() => new BackgroundWorker({ queue: q, ...(o as object) } as never));
      expect(isValidationError(e)).toBe(true);
    }
  });
});
