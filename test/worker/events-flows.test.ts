import { describe, expect, it } from 'vitest';
import {
  isChildTaskFailedError,
  isConflictError,
  isTaskFailedError,
  isValidationError,
} from '../../src/core/errors.js';
import {
  type QueueCompletedEvent,
  type QueueFailedEvent,
  type QueueProgressEvent,
  type TaskContext,
  UnrecoverableError,
} from '../../src/worker/index.js';
import { KINDS, sleep, until, workerFixture } from './fixture.js';

describe.each(KINDS)('events and flows: %s', (kind) => {
  const { queue, worker } = workerFixture(kind, { namePrefix: 'wqf', prefix: 'azs-test-wf:' });

  it('delivers completed, progress, retrying, failed, deadLettered and cancelled to another queue handle', async () => {
    const q = queue();
    // A second handle of the same queue stands for another process (memory: same process only).
    const listener = queue(q.name);
    const seen: { event: string; taskId: string; position: string; extra: unknown }[] = [];
    const offs = [
      listener.events.on('completed', (e: QueueCompletedEvent) =>
        seen.push({ event: 'completed', taskId: e.taskId, position: e.position, extra: e.result }),
      ),
      listener.events.on('progress', (e: QueueProgressEvent) =>
        seen.push({ event: 'progress', taskId: e.taskId, position: e.position, extra: e.progress }),
      ),
      listener.events.on('retrying', (e: QueueFailedEvent) =>
        seen.push({
          event: 'retrying',
          taskId: e.taskId,
          position: e.position,
          extra: e.error.message,
        }),
      ),
      listener.events.on('failed', (e: QueueFailedEvent) =>
        seen.push({
          event: 'failed',
          taskId: e.taskId,
          position: e.position,
          extra: e.error.message,
        }),
      ),
      listener.events.on('deadLettered', (e: QueueFailedEvent) =>
        seen.push({
          event: 'deadLettered',
          taskId: e.taskId,
          position: e.position,
          extra: e.error.name,
        }),
      ),
      listener.events.on('cancelled', (e) =>
        seen.push({ event: 'cancelled', taskId: e.taskId, position: e.position, extra: null }),
      ),
    ];
    expect(typeof offs[0]).toBe('function');
    await listener.events.ready();
    const w = worker<{ kind: string }, unknown>(q, {
      attempts: 2,
      backoff: { type: 'fixed', delay: 0, jitter: false },
      handler: async (d, ctx) => {
        if (d.kind === 'progress') {
          await ctx.progress(42);
          return { ok: 1 };
        }
        if (d.kind === 'fail') throw new Error('boom');
        return 'plain';
      },
    });
    const cancelled = await q.submitTask({ kind: 'x' }, { delay: 60 });
    expect(await q.cancelTask(cancelled)).toBe(true);
    const a = await q.submitTask({ kind: 'progress' });
    const b = await q.submitTask({ kind: 'fail' });
    await w.start();
    await until(() => seen.some((s) => s.event === 'deadLettered'));
    await until(() => seen.some((s) => s.event === 'completed' && s.taskId === a));
    const by = (ev: string, id: string) => seen.filter((s) => s.event === ev && s.taskId === id);
    expect(by('cancelled', cancelled)).toHaveLength(1);
    expect(by('progress', a).map((s) => s.extra)).toEqual([42]);
    expect(by('completed', a).map((s) => s.extra)).toEqual([{ ok: 1 }]);
    expect(by('retrying', b).map((s) => s.extra)).toEqual(['boom']);
    expect(by('failed', b).map((s) => s.extra)).toEqual(['boom']);
    expect(by('deadLettered', b).map((s) => s.extra)).toEqual(['Error']);
    // Positions grow in delivery order.
    const positions = seen.map((s) => s.position);
    expect(new Set(positions).size).toBe(new Set(seen.map((s) => `${s.position}`)).size);
    for (const off of offs) off();
  });

  it('resumes from a position: a listener added later with from gets what it missed, once', async () => {
    const q = queue();
    const first: QueueCompletedEvent[] = [];
    const off = q.events.on('completed', (e: QueueCompletedEvent) => first.push(e));
    await q.events.ready();
    const w = worker<number, number>(q, { handler: (n) => n * 2 });
    await w.start();
    const ids = await q.submitTasks([1, 2]);
    await until(() => first.length === 2);
    const mark = first[0]?.position as string;
    off();
    // While nobody listens on this handle, more tasks complete.
    const more = await q.submitTasks([3, 4, 5]);
    for (const id of more) await q.waitForResult(id, { timeout: 10 });
    const resumed: QueueCompletedEvent[] = [];
    const other = queue(q.name);
    other.events.on('completed', (e: QueueCompletedEvent) => resumed.push(e), { from: mark });
    await until(() => resumed.length >= 4);
    const live = await q.submitTask(6);
    await until(() => resumed.some((e) => e.taskId === live));
    await sleep(100);
    expect(resumed.map((e) => e.taskId)).toEqual([ids[1], ...more, live]);
    expect(resumed.map((e) => e.result)).toEqual([4, 6, 8, 10, 12]);
  });

  it('waitForResult wakes on the completion event', async () => {
    const q = queue();
    const w = worker<number, number>(q, {
      handler: async (n) => {
        await sleep(100);
        return n + 1;
      },
    });
    await w.start();
    const id = await q.submitTask(1);
    const t0 = performance.now();
    expect(await q.waitForResult(id, { timeout: 10 })).toBe(2);
    // The safety poll is 1 s: a return well before it came from the event. The handler is short
    // (but longer than the first look at the task) so a loaded machine's round trips fit in the gap.
    expect(performance.now() - t0).toBeLessThan(950);
  });

  it('a result over 16 KiB reaches listeners too (read by id, not carried in the event)', async () => {
    const q = queue();
    const got: QueueCompletedEvent[] = [];
    q.events.on('completed', (e: QueueCompletedEvent) => got.push(e));
    await q.events.ready();
    const big = 'x'.repeat(40_000);
    const w = worker<string, string>(q, { handler: (d) => d + big });
    await w.start();
    const id = await q.submitTask('y');
    expect(await q.waitForResult(id, { timeout: 10 })).toBe(`y${big}`);
    await until(() => got.length === 1);
    expect(got[0]?.result).toBe(`y${big}`);
  });

  it('events of a closed queue throw ClosedError', async () => {
    const q = queue();
    await q.close();
    expect(() => q.events).toThrow(/closed/);
  });

  it('rejects bad listeners and positions with ValidationError', () => {
    const q = queue();
    expect(() => q.events.on('nope' as 'completed', () => {})).toThrow(/event must be one of/);
    expect(() => q.events.on('completed', 42 as never)).toThrow(/listener/);
    for (const from of ['abc', '1-2-3', '', '__proto__', 5]) {
      try {
        q.events.on('completed', () => {}, { from: from as string });
        expect.unreachable();
      } catch (e) {
        expect(isValidationError(e)).toBe(true);
      }
    }
  });

  it('runs a flow: children first, the parent once with childResults; nested flows too', async () => {
    const q = queue();
    const order: string[] = [];
    const run = async (d: { tag: string }, ctx: TaskContext) => {
      order.push(d.tag);
      if (d.tag === 'root' || d.tag === 'mid') {
        const r = await ctx.childResults<string>();
        return { tag: d.tag, kids: r };
      }
      await sleep(5);
      return `r-${d.tag}`;
    };
    // Named flow nodes run by handlers[name] (a name without a handler is dead-lettered).
    const w = worker<{ tag: string }, unknown>(q, {
      numWorkers: 4,
      handler: run,
      handlers: { root: run, leaf: run },
    });
    const tree = await q.submitFlow({
      name: 'root',
      data: { tag: 'root' },
      children: [
        { data: { tag: 'a' } },
        { data: { tag: 'b' }, name: 'leaf' },
        { data: { tag: 'mid' }, children: [{ data: { tag: 'c' } }, { data: { tag: 'd' } }] },
      ],
    });
    expect(tree.children).toHaveLength(3);
    expect(tree.children[2]?.children).toHaveLength(2);
    expect(tree.children[0]?.children).toEqual([]);
    expect(await q.getTask(tree.id)).toMatchObject({ status: 'waiting-children', name: 'root' });
    expect((await q.getTask(tree.children[1]?.id as string))?.name).toBe('leaf');
    await w.start();
    const res = (await q.waitForResult(tree.id, { timeout: 15 })) as {
      tag: string;
      kids: Record<string, unknown>;
    };
    const [a, b, mid] = tree.children as [typeof tree, typeof tree, typeof tree];
    const [c, d] = mid.children as [typeof tree, typeof tree];
    expect(res.tag).toBe('root');
    expect(res.kids[a.id]).toBe('r-a');
    expect(res.kids[b.id]).toBe('r-b');
    expect(res.kids[mid.id]).toEqual({ tag: 'mid', kids: { [c.id]: 'r-c', [d.id]: 'r-d' } });
    expect(Object.keys(res.kids)).toHaveLength(3);
    expect(order.indexOf('mid')).toBeGreaterThan(Math.max(order.indexOf('c'), order.indexOf('d')));
    expect(order.indexOf('root')).toBe(order.length - 1);
    expect(order.filter((t) => t === 'root')).toHaveLength(1);
    expect(await q.childResults(tree.id)).toEqual({
      [a.id]: 'r-a',
      [b.id]: 'r-b',
      [mid.id]: { tag: 'mid', kids: { [c.id]: 'r-c', [d.id]: 'r-d' } },
    });
  });

  it('a child that ends dead-lettered fails the parent with ChildTaskFailedError naming it', async () => {
    const q = queue();
    let parentRuns = 0;
    const w = worker<{ tag: string }, string>(q, {
      attempts: 1,
      handler: async (d) => {
        if (d.tag === 'bad') throw new UnrecoverableError('no good');
        if (d.tag === 'parent') parentRuns++;
        return d.tag;
      },
    });
    const tree = await q.submitFlow({
      data: { tag: 'parent' },
      children: [{ data: { tag: 'ok' } }, { data: { tag: 'bad' } }],
    });
    await w.start();
    const bad = tree.children[1]?.id as string;
    const err = (await q.waitForResult(tree.id, { timeout: 10 }).catch((e) => e)) as Error;
    expect(isTaskFailedError(err)).toBe(true);
    expect(isChildTaskFailedError(err)).toBe(true);
    expect(String(err.message)).toContain(bad);
    expect(String(err.message)).toContain('no good');
    const info = await q.getTask(tree.id);
    expect(info).toMatchObject({ status: 'failed', errorName: 'ChildTaskFailedError' });
    expect((await q.deadLetters()).map((t) => t.id).sort()).toEqual([bad, tree.id].sort());
    expect(parentRuns).toBe(0);
  });

  it("onChildFailure: 'ignore' runs the parent without the failed child", async () => {
    const q = queue();
    const w = worker<{ tag: string }, unknown>(q, {
      attempts: 1,
      handler: async (d, ctx) => {
        if (d.tag === 'bad') throw new Error('nope');
        if (d.tag === 'parent') return ctx.childResults();
        return d.tag;
      },
    });
    const tree = await q.submitFlow({
      data: { tag: 'parent' },
      onChildFailure: 'ignore',
      children: [{ data: { tag: 'ok' } }, { data: { tag: 'bad' } }],
    });
    // On a leaf, the option marks that leaf's own failure as ignorable.
    const tree2 = await q.submitFlow({
      data: { tag: 'parent' },
      children: [{ data: { tag: 'ok' } }, { data: { tag: 'bad' }, onChildFailure: 'ignore' }],
    });
    await w.start();
    expect(await q.waitForResult(tree.id, { timeout: 10 })).toEqual({
      [tree.children[0]?.id as string]: 'ok',
    });
    expect(await q.waitForResult(tree2.id, { timeout: 10 })).toEqual({
      [tree2.children[0]?.id as string]: 'ok',
    });
  });

  it('submitFlow validates the whole flow before writing anything', async () => {
    const q = queue();
    const bad: unknown[] = [
      null,
      [],
      { data: 1, children: 'x' },
      { data: 1, children: [{ data: 2, attempts: -1 }] },
      { data: 1, children: [{ data: 2 }], delay: 5 },
      { data: 1, onChildFailure: 'maybe' },
      { data: 1, bogus: true },
      {
        data: 1,
        children: [
          { data: 1, taskId: 'same' },
          { data: 2, taskId: 'same' },
        ],
      },
      JSON.parse('{"data":1,"__proto__":{"x":1}}'),
      { data: 1, children: [{ data: () => 1 }] },
    ];
    for (const f of bad) {
      const e = await q.submitFlow(f as never).catch((x) => x);
      expect(isValidationError(e) || e?.code === 'AZS_SERIALIZATION', String(e)).toBe(true);
    }
    expect((await q.stats()).queued).toBe(0);
    let deep: Record<string, unknown> = { data: 0 };
    for (let i = 0; i < 60; i++) deep = { data: i, children: [deep] };
    expect(isValidationError(await q.submitFlow(deep as never).catch((x) => x))).toBe(true);
    await q.submitTask(1, { taskId: 'taken' });
    const conflict = await q
      .submitFlow({ data: 1, children: [{ data: 2, taskId: 'taken' }] })
      .catch((x) => x);
    expect(isConflictError(conflict)).toBe(true);
    expect((await q.stats()).queued).toBe(1);
  });

  it('a cancelled parent never runs; its children still finish', async () => {
    const q = queue();
    const ran: string[] = [];
    const w = worker<{ tag: string }, string>(q, {
      handler: async (d) => {
        ran.push(d.tag);
        return d.tag;
      },
    });
    const tree = await q.submitFlow({ data: { tag: 'p' }, children: [{ data: { tag: 'c' } }] });
    expect(await q.cancelTask(tree.id)).toBe(true);
    await w.start();
    expect(await q.waitForResult(tree.children[0]?.id as string, { timeout: 10 })).toBe('c');
    await sleep(100);
    expect(ran).toEqual(['c']);
    expect((await q.getTask(tree.id))?.status).toBe('cancelled');
  });
});
