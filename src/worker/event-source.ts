/**
 * The optional backend capability behind {@link TaskQueue.events}: a log of task events with
 * positions, read after a position. The Redis backend keeps it in a stream per queue (written by
 * the scripts that change task state), the memory backend in a ring buffer per queue.
 */

/** One event as the backend stores it; values that are JSON stay JSON text. */
export interface RawTaskEvent {
  /** Where the event is in the log (a Redis stream id, `ms-seq`). */
  position: string;
  /** `completed`, `failed`, `retrying`, `progress` or `cancelled`. */
  kind: string;
  /** The task id. */
  taskId: string;
  /** The attempt the event is about (0 when none started). */
  attempt: number;
  /** `completed`: the result (JSON); absent when it was too large to travel in the event. */
  result?: string;
  /** `failed`, `retrying`: JSON of `{ name, message, code? }`. */
  error?: string;
  /** `progress`: the value. */
  progress?: number;
  /** `retrying`: when the next attempt may start (ms since epoch). */
  retryAt?: number;
}

/** Reads a queue's event log. */
export interface TaskEventReader {
  /** The position of the newest event ('0-0' when there is none). */
  head(): Promise<string>;
  /**
   * Events after `after`, oldest first, waiting up to `blockMs` for the first one (an empty
   * list after that). Holds a connection of its own while it waits.
   */
  read(after: string, blockMs: number): Promise<RawTaskEvent[]>;
  /** Events after `after`, oldest first, at most `count`, without waiting. */
  range(after: string, count: number): Promise<RawTaskEvent[]>;
  /** Ends a pending read and frees what the reader holds. */
  close(): Promise<void>;
}

/** A backend that keeps task events. */
export interface TaskEventSource {
  /** Opens a reader (the Redis backend opens its blocking connection lazily, on the first read). */
  openEventReader(): TaskEventReader;
}

/** True when `b` keeps task events. */
export function hasEventSource(b: unknown): b is TaskEventSource {
  return typeof (b as Partial<TaskEventSource> | null)?.openEventReader === 'function';
}

/** Compares two positions (`ms-seq`) as the log orders them. */
export function comparePositions(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const x = BigInt(am) - BigInt(bm);
  if (x !== 0n) return x < 0n ? -1 : 1;
  const y = BigInt(as) - BigInt(bs);
  return y === 0n ? 0 : y < 0n ? -1 : 1;
}

/** A position as accepted by `from`: `ms-seq` or `ms` (digits only). */
export const POSITION_RE = /^\d{1,20}(?:-\d{1,20})?$/;

/** Parses a stream entry's field list (`[k, v, k, v, ...]`) into an event. */
export function parseStreamEvent(position: string, fields: readonly string[]): RawTaskEvent {
  const f: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
  const ev: RawTaskEvent = {
    position,
    kind: f.e ?? '',
    taskId: f.i ?? '',
    attempt: Number(f.a ?? 0),
  };
  if (f.r !== undefined) ev.result = f.r;
  if (f.er !== undefined) ev.error = f.er;
  if (f.p !== undefined) ev.progress = Number(f.p);
  if (f.at !== undefined) ev.retryAt = Number(f.at);
  return ev;
}
