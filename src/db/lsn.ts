/**
 * PostgreSQL WAL positions (`pg_lsn`), as text `XXXXXXXX/XXXXXXXX` (two hex halves). Kept as text
 * in `ctx` so it survives JSON; compared by value here.
 */

const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

/** True when `value` is a `pg_lsn` in its text form, e.g. `0/3000148`. */
export function isWalLsn(value: unknown): value is string {
  return typeof value === 'string' && LSN_RE.test(value);
}

/**
 * Compares two `pg_lsn` text values: negative when `a` is before `b`, 0 when equal, positive when
 * after. Both halves fit a double exactly, so no BigInt is needed on the read path.
 */
export function compareWalLsn(a: string, b: string): number {
  const ia = a.indexOf('/');
  const ib = b.indexOf('/');
  const hiA = Number.parseInt(a.slice(0, ia), 16);
  const hiB = Number.parseInt(b.slice(0, ib), 16);
  if (hiA !== hiB) return hiA - hiB;
  return Number.parseInt(a.slice(ia + 1), 16) - Number.parseInt(b.slice(ib + 1), 16);
}

/** The later of two positions (either may be missing). */
export function maxWalLsn(a: string | undefined, b: string): string {
  return a === undefined || !isWalLsn(a) || compareWalLsn(b, a) > 0 ? b : a;
}
