/**
 * Issue 14's shape for the worker: `store` (with `backend` as its alias) on TaskQueue and
 * BackgroundWorker, the explicit MemoryRegistry, and guards that work without `instanceof`.
 */
import { describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import {
  BackgroundWorker,
  MemoryQueueBackend,
  MemoryRegistry,
  TaskQueue,
  defaultMemoryRegistry,
  isFlowBackend,
  isMemoryRegistry,
  isQueueAdminBackend,
  isQueueBackend,
  isTaskEventSource,
  isTaskQueue,
} from '../../src/worker/index.js';

function option(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(isValidationError(e)).toBe(true);
    return (e as { option?: string }).option;
  }
  return 'no error';
}

describe('worker store, registry and guards', () => {
  it('a custom backend is given as store or backend; both at once with different values fail', async () => {
    const registry = new MemoryRegistry();
    const backend = new MemoryQueueBackend({ name: 'st', resultTtl: 60, registry });
    const viaStore = new TaskQueue({ name: 'st', store: backend });
    expect(viaStore.backend).toBe(backend);
    const viaBackend = new TaskQueue({ name: 'st', backend });
    expect(viaBackend.backend).toBe(backend);
    const other = new MemoryQueueBackend({ name: 'st2', resultTtl: 60, registry });
    expect(option(() => new TaskQueue({ store: backend, backend: other }))).toBe('store');
    expect(option(() => new TaskQueue({ store: {} as never }))).toBe('store');
    expect(option(() => new TaskQueue({ backend: 'x' as never }))).toBe('backend');

    // A worker given a queue name builds its queue on the store.
    const w = new BackgroundWorker({ queue: 'st', store: backend, handler: async (d) => d });
    expect(w.queue.backend).toBe(backend);
    await w.start();
    const id = await viaStore.submitTask(41);
    await expect(viaStore.waitForResult(id, { timeout: 10 })).resolves.toBe(41);
    await w.stop();
    const q = new TaskQueue({ name: 'st', store: backend });
    expect(
      option(() => new BackgroundWorker({ queue: q, store: backend, handler: async () => 1 })),
    ).toBe('store');
    expect(option(() => new BackgroundWorker({ queue: q, backend, handler: async () => 1 }))).toBe(
      'backend',
    );
    await viaStore.close();
    await viaBackend.close();
    await q.close();
  });

  it('queues in different registries do not share tasks; close() forgets what a registry holds', async () => {
    const a = new MemoryRegistry();
    const b = new MemoryRegistry();
    const qa = new TaskQueue({ name: 'same', memoryRegistry: a });
    const qb = new TaskQueue({ name: 'same', memoryRegistry: b });
    const qd = new TaskQueue({ name: 'same' });
    await qa.submitTask(1);
    await qa.schedule('tick', { every: 60, data: 1 });
    expect((await qa.stats()).queued).toBe(1);
    expect((await qb.stats()).queued).toBe(0);
    expect((await qd.stats()).queued).toBe(0);
    expect(await qb.schedules()).toEqual([]);
    expect(a.names).toEqual(['same']);
    expect(defaultMemoryRegistry.names).toContain('same');
    a.close();
    expect(a.names).toEqual([]);
    const again = new TaskQueue({ name: 'same', memoryRegistry: a });
    expect((await again.stats()).queued).toBe(0);
    expect(await again.schedules()).toEqual([]);
    expect(option(() => new TaskQueue({ memoryRegistry: new Map() as never }))).toBe(
      'memoryRegistry',
    );
    for (const q of [qa, qb, qd, again]) await q.close();
  });

  it('guards recognise objects by shape and brand, not by class identity', async () => {
    const q = new TaskQueue({ name: 'guards', memoryRegistry: new MemoryRegistry() });
    expect(isTaskQueue(q)).toBe(true);
    expect(isTaskQueue({ name: 'guards' })).toBe(false);
    expect(isTaskQueue(null)).toBe(false);
    // What another copy of the module would hand over: the same brand on another object.
    const copy = Object.create(null) as Record<symbol, unknown>;
    copy[Symbol.for('azscale.worker.TaskQueue')] = true;
    expect(isTaskQueue(copy)).toBe(true);
    expect(isMemoryRegistry(new MemoryRegistry())).toBe(true);
    expect(isMemoryRegistry({})).toBe(false);
    expect(isQueueBackend(q.backend)).toBe(true);
    expect(isQueueBackend({ claim() {} })).toBe(false);
    expect(isQueueAdminBackend(q.backend)).toBe(true);
    expect(isFlowBackend(q.backend)).toBe(true);
    expect(isTaskEventSource(q.backend)).toBe(true);
    expect(isFlowBackend({})).toBe(false);
    await q.close();
  });
});
