import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Pg from 'pg';

/**
 * Loads `pg` on first use, synchronously (the router's constructor creates pools), so that
 * importing azscale does not load it (~20-150 ms) for apps that never route a query. Resolved from
 * azscale's own location first, then from the working directory.
 */
let pg: typeof Pg | undefined;

export function loadPg(): typeof Pg {
  if (pg) return pg;
  const bases: string[] = [];
  if (typeof __filename === 'string') bases.push(__filename);
  else {
    try {
      bases.push(import.meta.url);
    } catch {
      // No import.meta in this build format: the working directory remains.
    }
  }
  bases.push(join(process.cwd(), 'package.json'));
  let last: unknown;
  for (const base of bases) {
    try {
      pg = createRequire(base)('pg') as typeof Pg;
      return pg;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
