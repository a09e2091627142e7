/**
 * Progress for long commands: one line on stderr, rewritten in place, only when stderr is a
 * terminal (a pipe or a log file gets nothing, so scripts read clean output).
 */

/** Reports progress; a no-op when stderr is not a terminal. */
export interface Progress {
  /** Replaces the progress line with `text`. */
  update(text: string): void;
  /** Clears the progress line. */
  done(): void;
}

/** A progress line written with `write` when `enabled` (stderr is a TTY). */
export function createProgress(enabled: boolean, write: (text: string) => void): Progress {
  if (!enabled) return { update() {}, done() {} };
  let shown = false;
  return {
    update(text) {
      // \r to the line start, then erase to its end (ANSI EL), so a shorter text leaves no tail.
      write(`\r${text}\x1b[K`);
      shown = true;
    },
    done() {
      if (shown) write('\r\x1b[K');
      shown = false;
    },
  };
}
