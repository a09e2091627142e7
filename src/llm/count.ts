/** Token counts read from providers' usage objects, which may hold anything. */

/**
 * A token count from an untrusted field: a finite number >= 0, rounded; else undefined.
 * @internal
 */
export function tokenCount(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined;
}
