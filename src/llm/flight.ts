/**
 * One answer in the making, shared by every caller of the same request in this process: the
 * leader's call pushes parts in, readers (streamed or whole) take them out as they arrive. When
 * the last reader leaves before the answer is whole, the call is aborted: nobody wants it, and
 * a cut answer must not be cached.
 */
import { CancelledError } from '../core/errors.js';
import { sleep } from '../core/timers.js';
import { type LLMEntry, type LLMStreamPart, entryToParts } from './entry.js';

/** Where an answer came from. */
export type LLMAnswerSource = 'model' | 'cache' | 'peer' | 'bypass';

/**
 * The key of a method on a pipeline stream that yields its parts in batches (every part already
 * in at each step), so an adapter can hand a replayed answer on in one step instead of one part
 * per turn. @internal
 */
export const PART_BATCHES: unique symbol = Symbol('azscale.llm.partBatches');

/** @internal */
export class Flight {
  readonly parts: LLMStreamPart[] = [];
  readonly controller = new AbortController();
  entry: LLMEntry | undefined;
  error: unknown;
  done = false;
  source: LLMAnswerSource = 'model';
  model: string | undefined;
  /** Set when the first part arrives (performance.now()). */
  firstPartAt: number | undefined;
  private readers = 0;
  private waiters: (() => void)[] = [];
  readonly settled: Promise<LLMEntry>;
  private resolveSettled!: (e: LLMEntry) => void;
  private rejectSettled!: (e: unknown) => void;

  constructor() {
    this.settled = new Promise<LLMEntry>((resolve, reject) => {
      this.resolveSettled = resolve;
      this.rejectSettled = reject;
    });
    // A flight nobody awaits must not surface as an unhandled rejection.
    this.settled.catch(() => undefined);
  }

  push(part: LLMStreamPart): void {
    if (this.done) return;
    this.firstPartAt ??= performance.now();
    this.parts.push(part);
    this.wake();
  }

  /** Pushes the parts of a whole answer (a stored one, or a model's whole answer). */
  replay(entry: LLMEntry, chunkChars: number): void {
    for (const p of entryToParts(entry, { chunkChars })) this.push(p);
  }

  finish(entry: LLMEntry): void {
    if (this.done) return;
    this.done = true;
    this.entry = entry;
    this.wake();
    this.resolveSettled(entry);
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake();
    this.rejectSettled(error);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private attach(signal: AbortSignal | undefined): () => void {
    this.readers++;
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      signal?.removeEventListener('abort', leave);
      if (--this.readers === 0 && !this.done) this.controller.abort(cancelled());
      this.wake();
    };
    signal?.addEventListener('abort', leave, { once: true });
    return leave;
  }

  /** The whole answer; `signal` detaches this caller only. */
  async whole(signal?: AbortSignal): Promise<LLMEntry> {
    if (signal?.aborted) throw cancelled(signal.reason);
    const leave = this.attach(signal);
    try {
      if (!signal) return await this.settled;
      return await Promise.race([
        this.settled,
        new Promise<never>((_, reject) =>
          signal.addEventListener('abort', () => reject(cancelled(signal.reason)), { once: true }),
        ),
      ]);
    } finally {
      leave();
    }
  }

  /** The parts as they arrive; replays of stored answers are paced by `delayMs`. */
  async *read(signal?: AbortSignal, delayMs = 0): AsyncGenerator<LLMStreamPart> {
    for await (const batch of this.batches(signal, delayMs)) yield* batch;
  }

  /**
   * The parts in batches: each step yields every part that arrived since the last one (one part
   * per step while a replay is paced by `delayMs`).
   */
  async *batches(signal?: AbortSignal, delayMs = 0): AsyncGenerator<readonly LLMStreamPart[]> {
    if (signal?.aborted) throw cancelled(signal.reason);
    const leave = this.attach(signal);
    try {
      let i = 0;
      for (;;) {
        if (i < this.parts.length) {
          if (signal?.aborted) throw cancelled(signal.reason);
          if (delayMs > 0 && this.source !== 'model' && this.source !== 'bypass') {
            if (i > 0) await sleep(delayMs, signal).catch(() => undefined);
            if (signal?.aborted) throw cancelled(signal.reason);
            yield [this.parts[i++] as LLMStreamPart];
          } else {
            const from = i;
            i = this.parts.length;
            yield this.parts.slice(from, i);
          }
          continue;
        }
        if (this.done) {
          if (this.error !== undefined) throw this.error;
          return;
        }
        if (signal?.aborted) throw cancelled(signal.reason);
        await this.next();
      }
    } finally {
      leave();
    }
  }
}

/** The error a caller who left gets. @internal */
export function cancelled(reason?: unknown): CancelledError {
  return new CancelledError('the LLM call was cancelled by its caller', { cause: reason });
}
