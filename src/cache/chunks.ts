/**
 * Runs `fn` over consecutive slices `[start, end)` of `n` items, `size` items per slice, with at
 * most `window` slices in flight. The first failure stops new slices from starting and is thrown
 * once the running ones settle.
 * @internal
 */
export async function inChunks(
  n: number,
  size: number,
  window: number,
  fn: (start: number, end: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < n && !failed) {
      const start = next;
      next = Math.min(n, start + size);
      try {
        await fn(start, next);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  const workers = Math.min(window, Math.ceil(n / size));
  const results = await Promise.allSettled(Array.from({ length: workers }, worker));
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}
