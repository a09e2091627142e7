import type { JsonCodec } from '../core/codec.js';
import { ValidationError, describeValue } from '../core/errors.js';
import { type Disposer, Emitter } from '../core/events.js';
import { sleep } from '../core/timers.js';
import { assertFunction, assertObject } from '../core/validate.js';
import type { QueueBackend } from './backend.js';
import {
  POSITION_RE,
  type RawTaskEvent,
  type TaskEventReader,
  type TaskEventSource,
  comparePositions,
} from './event-source.js';

/** Fields every {@link TaskQueue.events} event carries. */
export interface QueueEventBase {
  /** The task id. */
  taskId: string;
  /** The attempt the event is about (1 for the first; 0 when none had started). */
  attempt: number;
  /**
   * Where the event is in the queue's event log. Pass it as `from` to
   * {@link TaskQueueEvents.on} to resume after it (e.g. after a reconnect or a restart).
   */
  position: string;
}

/** Payload of the queue's `completed` event. */
export interface QueueCompletedEvent extends QueueEventBase {
  /** The handler's return value (`null` for a handler that returned nothing). */
  result: unknown;
}

/** Payload of the queue's `failed`, `deadLettered` and `retrying` events. */
export interface QueueFailedEvent extends QueueEventBase {
  /** A copy of the attempt's error: its `name`, `message` and `code` (when it had one). */
  error: Error;
  /** For `retrying`: when the next attempt may start, in milliseconds since the epoch. */
  retryAt?: number;
}

/** Payload of the queue's `progress` event. */
export interface QueueProgressEvent extends QueueEventBase {
  /** The value the handler passed to `ctx.progress(n)`. */
  progress: number;
}

/** Events of {@link TaskQueue.events}. */
export type QueueEventMap = {
  /** A task completed; its result is in the event. */
  completed: (e: QueueCompletedEvent) => void;
  /** A task failed for good (it is in the dead-letter list; `deadLettered` fires for it too). */
  failed: (e: QueueFailedEvent) => void;
  /** An attempt failed and the task will run again at `retryAt`. */
  retrying: (e: QueueFailedEvent) => void;
  /** A running task reported progress with `ctx.progress(n)`. */
  progress: (e: QueueProgressEvent) => void;
  /** A task went to the dead-letter list (fires with `failed`). */
  deadLettered: (e: QueueFailedEvent) => void;
  /** A task was cancelled. */
  cancelled: (e: QueueEventBase) => void;
  /** Reading the events failed (e.g. Redis unavailable); reading goes on from the same position. */
  error: (e: Error) => void;
};

/** Options of {@link TaskQueueEvents.on}. */
export interface QueueEventListenOptions {
  /**
   * Deliver the events after this position (an event's `position`) before the live ones, so a
   * listener that reconnects misses nothing the log still keeps (the newest `events.maxLen`
   * events of the queue, 10000 by default). `'0'` replays the whole log. Without it, only events from now on are delivered.
   */
  from?: string;
}

type TaskEventName = Exclude<keyof QueueEventMap, 'error'>;

const EVENT_NAMES: readonly TaskEventName[] = [
  'completed',
  'failed',
  'retrying',
  'progress',
  'deadLettered',
  'cancelled',
];

/** Which listener events a stored event kind fires. */
const FIRES: Record<string, readonly TaskEventName[]> = {
  completed: ['completed'],
  failed: ['failed', 'deadLettered'],
  retrying: ['retrying'],
  progress: ['progress'],
  cancelled: ['cancelled'],
};

/** Milliseconds one blocking read waits before it is sent again. */
const BLOCK_MS = 5000;
/** Milliseconds the reader stays open after its last listener left (waits come in bursts). */
const LINGER_MS = 5000;
/** Events read per catch-up page. */
const PAGE = 500;

interface Listener {
  event: TaskEventName;
  fn: (e: never) => void;
  /** Position of the last event delivered (or the `from` given); undefined: live only. */
  last: string | undefined;
  /** True while the events after `from` are still being replayed. */
  catching: boolean;
  /** Live events that arrived during the replay, delivered after it. */
  buffer: RawTaskEvent[];
  disposed: boolean;
}

/** What {@link TaskQueueEvents} needs from its queue. */
export interface QueueEventsHost {
  readonly name: string;
  readonly backend: QueueBackend & TaskEventSource;
  readonly resultCodec: JsonCodec;
}

/**
 * The events of one queue, from every process that works on it: `completed`, `failed`,
 * `retrying`, `progress`, `deadLettered` and `cancelled`. On Redis they come from a stream per
 * queue that the scripts changing task state write to; one blocking reader per
 * {@link TaskQueue} object, opened when the first listener is added and closed a few seconds
 * after the last one left. Each event carries its `position`; `on(event, fn, { from })`
 * replays what came after a position before the live events.
 *
 * @example
 * const off = queue.events.on('progress', ({ taskId, progress }) => ui.update(taskId, progress));
 * queue.events.on('completed', (e) => save(e.position), { from: lastSavedPosition });
 */
export class TaskQueueEvents {
  private readonly host: QueueEventsHost;
  private readonly listeners = new Set<Listener>();
  private readonly watchers = new Map<string, Set<() => void>>();
  private readonly errors = new Emitter<Pick<QueueEventMap, 'error'>>();
  private reader: TaskEventReader | undefined;
  private ranger: TaskEventReader | undefined;
  private cursor: string | undefined;
  private running = false;
  private closed = false;
  private lingerUntil = 0;
  private readyWaiters: (() => void)[] = [];

  /** @internal Created by {@link TaskQueue.events}. */
  constructor(host: QueueEventsHost) {
    this.host = host;
  }

  /**
   * Adds `listener` for `event`; returns a disposer that removes it. The first listener opens
   * the reader; use {@link ready} to know when events from "now" on are sure to be seen.
   * @throws ValidationError for an unknown event, a listener that is not a function or a bad `from`.
   */
  on<K extends keyof QueueEventMap>(
    event: K,
    listener: QueueEventMap[K],
    options: QueueEventListenOptions = {},
  ): Disposer {
    assertFunction(listener, 'listener');
    if (event === 'error') return this.errors.on('error', listener as QueueEventMap['error']);
    if (!EVENT_NAMES.includes(event as TaskEventName)) {
      throw new ValidationError(
        `event must be one of ${EVENT_NAMES.join(', ')} or error, received ${describeValue(event)}`,
        { option: 'event' },
      );
    }
    assertObject(options, 'options');
    const from = options.from;
    if (from !== undefined && (typeof from !== 'string' || !POSITION_RE.test(from))) {
      throw new ValidationError(
        `from must be an event position such as "1700000000000-0", received ${describeValue(from)}`,
        { option: 'from' },
      );
    }
    const l: Listener = {
      event: event as TaskEventName,
      fn: listener as (e: never) => void,
      last: from,
      catching: from !== undefined,
      buffer: [],
      disposed: false,
    };
    this.listeners.add(l);
    this.start();
    if (l.catching) void this.catchUp(l);
    const dispose = () => {
      if (l.disposed) return;
      l.disposed = true;
      this.listeners.delete(l);
      this.left();
    };
    return Object.assign(dispose, { dispose });
  }

  /** Removes every listener of `event` that is `listener`. */
  off<K extends keyof QueueEventMap>(event: K, listener: QueueEventMap[K]): void {
    if (event === 'error') this.errors.off('error', listener as QueueEventMap['error']);
    for (const l of this.listeners) {
      if (l.event === event && l.fn === (listener as unknown)) {
        l.disposed = true;
        this.listeners.delete(l);
      }
    }
    this.left();
  }

  /**
   * Resolves once the reader knows its starting position: every event after that moment reaches
   * the listeners. Resolves at once when nobody listens.
   */
  ready(): Promise<void> {
    if (!this.running || this.cursor !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Position of the last event read, or undefined before the reader started. */
  get position(): string | undefined {
    return this.cursor;
  }

  /** @internal Calls `fn` when task `id` completes, fails for good or is cancelled. */
  watch(id: string, fn: () => void): () => void {
    let set = this.watchers.get(id);
    if (!set) {
      set = new Set();
      this.watchers.set(id, set);
    }
    set.add(fn);
    this.start();
    return () => {
      const cur = this.watchers.get(id);
      cur?.delete(fn);
      if (cur && cur.size === 0) this.watchers.delete(id);
      this.left();
    };
  }

  /** @internal Stops reading and drops every listener (the queue closed). */
  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.watchers.clear();
    this.flushReady();
    await Promise.all([this.reader?.close(), this.ranger?.close()]);
  }

  private wanted(): boolean {
    return (
      !this.closed &&
      (this.listeners.size > 0 || this.watchers.size > 0 || Date.now() < this.lingerUntil)
    );
  }

  private left(): void {
    if (this.listeners.size === 0 && this.watchers.size === 0) {
      this.lingerUntil = Date.now() + LINGER_MS;
    }
  }

  private start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.loop();
  }

  private flushReady(): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const r of w) r();
  }

  private async loop(): Promise<void> {
    const reader = this.host.backend.openEventReader();
    this.reader = reader;
    let pause = 50;
    try {
      while (this.wanted()) {
        try {
          if (this.cursor === undefined) {
            this.cursor = await reader.head();
            this.flushReady();
          }
          const evs = await reader.read(this.cursor, BLOCK_MS);
          pause = 50;
          for (const ev of evs) {
            this.cursor = ev.position;
            await this.dispatch(ev);
          }
        } catch (e) {
          if (!this.wanted()) break;
          this.emitError(e);
          await sleep(pause);
          pause = Math.min(pause * 2, 2000);
        }
      }
    } finally {
      this.running = false;
      this.cursor = undefined;
      this.reader = undefined;
      this.flushReady();
      await reader.close();
      // Someone came back while we were leaving.
      if (this.wanted() && (this.listeners.size > 0 || this.watchers.size > 0)) this.start();
    }
  }

  private async dispatch(ev: RawTaskEvent): Promise<void> {
    const fires = FIRES[ev.kind] ?? [];
    let payload: unknown;
    for (const l of [...this.listeners]) {
      if (l.disposed || !fires.includes(l.event)) continue;
      if (l.catching) {
        l.buffer.push(ev);
        continue;
      }
      if (l.last !== undefined && comparePositions(ev.position, l.last) <= 0) continue;
      payload ??= await this.payload(ev);
      this.deliver(l, ev, payload);
    }
    if (ev.kind === 'completed' || ev.kind === 'failed' || ev.kind === 'cancelled') {
      const set = this.watchers.get(ev.taskId);
      if (set) for (const fn of [...set]) fn();
    }
  }

  private deliver(l: Listener, ev: RawTaskEvent, payload: unknown): void {
    if (l.disposed) return;
    l.last = ev.position;
    try {
      l.fn(payload as never);
    } catch (e) {
      // A listener that throws must not stop the others nor the reader.
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  /** Replays the log after `l.last`, then the live events that came meanwhile. */
  private async catchUp(l: Listener): Promise<void> {
    let pause = 50;
    this.ranger ??= this.host.backend.openEventReader();
    const ranger = this.ranger;
    while (!l.disposed && !this.closed) {
      try {
        const evs = await ranger.range(l.last ?? '0-0', PAGE);
        const fires = FIRES;
        for (const ev of evs) {
          if (l.disposed) return;
          if ((fires[ev.kind] ?? []).includes(l.event)) {
            this.deliver(l, ev, await this.payload(ev));
          } else l.last = ev.position;
        }
        if (evs.length < PAGE) break;
      } catch (e) {
        this.emitError(e);
        await sleep(pause);
        pause = Math.min(pause * 2, 2000);
      }
    }
    while (l.buffer.length > 0 && !l.disposed) {
      const ev = l.buffer.shift() as RawTaskEvent;
      if (l.last !== undefined && comparePositions(ev.position, l.last) <= 0) continue;
      this.deliver(l, ev, await this.payload(ev));
    }
    l.catching = false;
  }

  private async payload(ev: RawTaskEvent): Promise<unknown> {
    const base = { taskId: ev.taskId, attempt: ev.attempt, position: ev.position };
    switch (ev.kind) {
      case 'completed': {
        let text = ev.result;
        if (text === undefined) {
          // Too large to travel in the event: read it (null if it expired meanwhile).
          try {
            text = (await this.host.backend.get(ev.taskId))?.result;
          } catch (e) {
            this.emitError(e);
          }
        }
        let result: unknown = null;
        try {
          if (text !== undefined) result = this.host.resultCodec.decode(text, 'task result');
        } catch (e) {
          this.emitError(e);
        }
        return { ...base, result };
      }
      case 'failed':
      case 'retrying': {
        const out: Record<string, unknown> = { ...base, error: toError(ev.error) };
        if (ev.retryAt !== undefined) out.retryAt = ev.retryAt;
        return out;
      }
      case 'progress':
        return { ...base, progress: ev.progress };
      default:
        return base;
    }
  }

  private emitError(e: unknown): void {
    this.errors.emit('error', e instanceof Error ? e : new Error(String(e)));
  }
}

/** Rebuilds an error from its stored JSON (`{ name, message, code? }`). */
function toError(text: string | undefined): Error {
  let v: { name?: unknown; message?: unknown; code?: unknown } = {};
  try {
    v = JSON.parse(text ?? '{}') as typeof v;
  } catch {
    v = { message: text };
  }
  const err = new Error(typeof v.message === 'string' ? v.message : 'unknown error');
  err.name = typeof v.name === 'string' ? v.name : 'Error';
  if (typeof v.code === 'string') (err as Error & { code: string }).code = v.code;
  return err;
}
