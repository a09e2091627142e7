import { ValueTooLargeError } from '../core/errors.js';
import { MAX_TIMER_MS, optionalDuration } from '../core/timers.js';
import { appendToSessionText } from './splice.js';
import type { SessionAppendOptions, SessionStore } from './store.js';

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /**
   * Seconds between sweeps that free expired sessions nobody reads again (reads and writes
   * already drop an expired entry they meet). The timer is unref'd: it never keeps a process
   * alive. At most 2147483.647 (Node's longest timer).
   * @default 60
   */
  sweepInterval?: number;
}

interface Entry {
  text: string;
  /** Epoch milliseconds; `Infinity` for no expiry. */
  expiresAt: number;
}

/**
 * The embedded store: sessions in this process's memory, with the same semantics as Redis
 * (JSON text per key, expiry per write, atomic compare-and-set and append). Every operation runs
 * synchronously to completion, so each is atomic with respect to the others without locks.
 *
 * Use it for tests, single-instance services and development; sessions do not survive a restart
 * and are not shared between processes.
 */
export class MemorySessionStore implements SessionStore {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MemorySessionStoreOptions = {}) {
    // An interval is one timer: past 2^31-1 ms Node would fire it every millisecond.
    const every =
      optionalDuration(options.sweepInterval, 'sweepInterval', { max: MAX_TIMER_MS / 1000 }) ?? 60;
    this.timer = setInterval(() => this.sweep(), every * 1000);
    this.timer.unref();
  }

  /** Number of live entries (expired ones not yet swept may be counted). */
  get size(): number {
    return this.entries.size;
  }

  /** The live keys that start with `prefix` (for listing stores such as `ExpressSessionStore.all`). */
  keys(prefix = ''): string[] {
    const out: string[] = [];
    for (const key of this.entries.keys()) {
      if (key.startsWith(prefix) && this.live(key) !== undefined) out.push(key);
    }
    return out;
  }

  async get(key: string, touchTtlMs?: number): Promise<string | null> {
    const e = this.live(key);
    if (!e) return null;
    if (touchTtlMs !== undefined) e.expiresAt = Date.now() + touchTtlMs;
    return e.text;
  }

  async set(key: string, text: string, ttlMs: number): Promise<void> {
    this.entries.set(key, { text, expiresAt: Date.now() + ttlMs });
  }

  async delete(key: string): Promise<boolean> {
    const existed = this.live(key) !== undefined;
    this.entries.delete(key);
    return existed;
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    const e = this.live(key);
    if (!e) return false;
    e.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async ttl(key: string): Promise<number | null> {
    const e = this.live(key);
    if (!e) return null;
    return e.expiresAt === Number.POSITIVE_INFINITY ? -1 : Math.max(0, e.expiresAt - Date.now());
  }

  async compareAndSet(
    key: string,
    expected: string | null,
    text: string,
    ttlMs: number,
  ): Promise<boolean> {
    const current = this.live(key)?.text ?? null;
    if (current !== expected) return false;
    this.entries.set(key, { text, expiresAt: Date.now() + ttlMs });
    return true;
  }

  async append(key: string, itemJson: string, options: SessionAppendOptions): Promise<number> {
    const current = this.live(key);
    const { text, length } = appendToSessionText(
      current ? current.text : null,
      itemJson,
      options.maxItems,
      key,
      options.count ?? 1,
      options.trim ? options.maxBytes : undefined,
    );
    const bytes = Buffer.byteLength(text);
    if (bytes > options.maxBytes) {
      throw new ValueTooLargeError(`session at ${key} after the append`, bytes, options.maxBytes);
    }
    this.entries.set(key, { text, expiresAt: Date.now() + options.ttlMs });
    return length;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.entries.clear();
  }

  private live(key: string): Entry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }
}
