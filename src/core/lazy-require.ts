import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * Loads a CommonJS package synchronously, only when first needed, so that importing azscale does
 * not load it. Resolved from azscale's own location first, then from the working directory (where
 * the app's own dependencies are). Throws the last resolution error when neither finds it.
 */
export function lazyRequire<T>(name: string): T {
  const bases: string[] = [];
  if (typeof __filename === 'string') bases.push(__filename);
  else {
    try {
      bases.push(import.meta.url);
    } catch {
      // import.meta is unavailable in this build format; the working directory remains.
    }
  }
  bases.push(join(process.cwd(), 'package.json'));
  let last: unknown;
  for (const base of bases) {
    try {
      return createRequire(base)(name) as T;
    } catch (e) {
      last = e;
    }
  }
  throw last;
}
