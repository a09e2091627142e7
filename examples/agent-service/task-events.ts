/**
 * GET /api/task/:id/events: a task's progress and outcome as server-sent events, from
 * `queue.events` (delivered to this instance whichever instance runs the task).
 *
 * Events: `status` first (`{ task_id, status, progress? }`), then `progress` (`{ progress }`),
 * `retrying` (`{ attempt, error }`) and one final `completed` (`{ result }`), `failed`
 * (`{ error }`) or `cancelled` (`{}`), after which the stream ends. A comment line every 15 s
 * keeps idle proxies from closing a stream that waits for a queued task. Open streams are kept
 * in `openStreams` so a shutdown can end them (a hijacked response would hold the server open).
 */
import type { ServerResponse } from 'node:http';
import type { TaskQueue } from '../../src/worker/index.js';
import { redact } from './redact.js';

const KEEPALIVE_MS = 15_000;
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

type Send = (event: string, data: unknown) => void;

/**
 * Streams task `id` to `out`. Resolves to false (nothing written) when the task is unknown, so
 * the route answers 404; otherwise writes the stream and resolves once it ended.
 */
export async function streamTaskEvents(
  queue: TaskQueue,
  id: string,
  out: () => ServerResponse,
  openStreams: Set<() => void>,
): Promise<boolean> {
  // Listen before reading the task's state: an event between the two is buffered, not lost.
  let send: Send | undefined;
  const early: [string, unknown][] = [];
  let finished = false;
  let end: () => void = () => {};
  const deliver = (event: string, data: unknown) => {
    if (finished) return;
    if (!send) {
      early.push([event, data]);
      return;
    }
    send(event, data);
    if (TERMINAL.has(event)) end();
  };
  const ev = queue.events;
  const offs = [
    ev.on('progress', (e) => {
      if (e.taskId === id) deliver('progress', { progress: e.progress });
    }),
    ev.on('retrying', (e) => {
      if (e.taskId === id)
        deliver('retrying', { attempt: e.attempt, error: redact(e.error.message) });
    }),
    ev.on('completed', (e) => {
      if (e.taskId === id) deliver('completed', { result: e.result });
    }),
    ev.on('failed', (e) => {
      if (e.taskId === id) deliver('failed', { error: redact(e.error.message) });
    }),
    ev.on('cancelled', (e) => {
      if (e.taskId === id) deliver('cancelled', {});
    }),
  ];
  const dispose = () => {
    for (const off of offs) off();
  };
  try {
    await ev.ready();
    const t = await queue.getTask(id);
    if (!t) {
      dispose();
      return false;
    }
    const res = out();
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    const done = new Promise<void>((resolve) => {
      const keepalive = setInterval(() => res.write(': keep-alive\n\n'), KEEPALIVE_MS);
      end = () => {
        if (finished) return;
        finished = true;
        clearInterval(keepalive);
        dispose();
        openStreams.delete(end);
        res.end();
        resolve();
      };
      openStreams.add(end);
      res.on('close', end);
    });
    send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('status', {
      task_id: t.id,
      status: t.status,
      ...(t.progress !== undefined ? { progress: t.progress } : {}),
    });
    if (TERMINAL.has(t.status)) {
      // Finished before we looked: the outcome comes from the stored task.
      if (t.status === 'completed') send('completed', { result: t.result ?? null });
      else if (t.status === 'failed') send('failed', { error: redact(t.error ?? 'failed') });
      else send('cancelled', {});
      end();
    } else {
      for (const [event, data] of early.splice(0)) deliver(event, data);
    }
    await done;
    return true;
  } catch (e) {
    dispose();
    throw e;
  }
}
