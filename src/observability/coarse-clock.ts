/**
 * A millisecond clock refreshed by one unref'd timer, shared by every Metrics instance of this
 * copy of azscale. Histograms stamp each observation with it to pick their window slot: reading
 * a variable instead of calling Date.now() keeps observe() cheap on hosts where the system clock
 * costs a syscall (about 200 ns on some VMs). The stamp lags real time by at most the refresh
 * period plus any event-loop stall, which can only move an observation into the neighbouring
 * slot near a slot boundary. The timer is started by the first histogram and never keeps the
 * process alive.
 */

/** How often the clock is refreshed, in milliseconds. */
export const COARSE_CLOCK_PERIOD_MS = 100;

let current = Date.now();
let timer: ReturnType<typeof setInterval> | undefined;

/** The coarse time, milliseconds since the epoch. */
export function coarseNow(): number {
  return current;
}

/**
 * Starts the refresh timer once per process. Also restarts it when the clock has gone stale
 * (its timer was lost, e.g. created under a test's fake timers that were later uninstalled).
 */
export function ensureCoarseClock(): void {
  const now = Date.now();
  if (timer !== undefined && Math.abs(now - current) < 10 * COARSE_CLOCK_PERIOD_MS) return;
  current = now;
  if (timer !== undefined) clearInterval(timer);
  timer = setInterval(() => {
    current = Date.now();
  }, COARSE_CLOCK_PERIOD_MS);
  // Never keeps the process alive.
  timer.unref();
}
