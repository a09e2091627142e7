import { DEFAULT_EVENTS_MAX_LEN as EVENTS_MAX_LEN } from './admin.js';
import { type RawTaskEvent, type TaskEventReader, comparePositions } from './event-source.js';

/**
 * The memory backend's events: a ring of the last `maxLen` events of one queue,
 * with positions shaped like Redis stream ids (`0-seq`), so `from` works the same way.
 */
export class MemoryEventLog {
  /** Newest events kept (the queue's `events.maxLen`). */
  maxLen = EVENTS_MAX_LEN;
  private readonly buf: RawTaskEvent[] = [];
  private seq = 0;
  private readonly waiters = new Set<() => void>();

  /** Appends an event and wakes pending reads. */
  push(ev: Omit<RawTaskEvent, 'position'>): void {
    this.seq++;
    this.buf.push({ ...ev, position: `0-${this.seq}` });
    // Trimmed in chunks, like MAXLEN ~, so a full ring does not shift on every event.
    if (this.buf.length > this.maxLen + 100) this.buf.splice(0, this.buf.length - this.maxLen);
    for (const w of [...this.waiters]) w();
  }

  /** Position of the newest event. */
  head(): string {
    return `0-${this.seq}`;
  }

  /** Events after `after`, at most `count`. */
  after(after: string, count: number): RawTaskEvent[] {
    const out: RawTaskEvent[] = [];
    // Positions grow by one per event: find the first newer one from the end.
    let i = this.buf.length;
    while (i > 0 && comparePositions((this.buf[i - 1] as RawTaskEvent).position, after) > 0) i--;
    for (; i < this.buf.length && out.length < count; i++) out.push(this.buf[i] as RawTaskEvent);
    return out;
  }

  /** A reader over this log. */
  reader(): TaskEventReader {
    let wake: (() => void) | undefined;
    let closed = false;
    return {
      head: async () => this.head(),
      range: async (after, count) => this.after(after, count),
      read: (after, blockMs) => {
        const now = this.after(after, 500);
        if (now.length > 0 || closed) return Promise.resolve(now);
        return new Promise<RawTaskEvent[]>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            this.waiters.delete(done);
            wake = undefined;
            resolve(closed ? [] : this.after(after, 500));
          };
          const timer = setTimeout(done, Math.max(0, blockMs));
          // An in-process listener must not keep the process alive (as with an EventEmitter).
          timer.unref();
          this.waiters.add(done);
          wake = done;
        });
      },
      close: async () => {
        closed = true;
        wake?.();
      },
    };
  }
}
