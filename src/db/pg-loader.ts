import type * as Pg from 'pg';
import { lazyRequire } from '../core/lazy-require.js';

/**
 * Loads `pg` on first use, synchronously (the router's constructor creates pools), so that
 * importing azscale does not load it (~20-150 ms) for apps that never route a query.
 */
let pg: typeof Pg | undefined;

export function loadPg(): typeof Pg {
  pg ??= lazyRequire<typeof Pg>('pg');
  return pg;
}
