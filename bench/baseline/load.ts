/**
 * Loads an earlier version of azscale's source, for "no slower than before" rows: `git archive`
 * of `AZS_BENCH_BASELINE` (a commit, tag or branch; default the commit this consolidation started
 * from) is unpacked under node_modules/.cache (so its imports resolve to this checkout's
 * dependencies) and imported by tsx like our own source. Undefined when git or the ref is not
 * there: the rows are then left out, never faked.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The commit before the backend resolver and the resilience consolidation (azscale 0.1.0 line). */
export const DEFAULT_BASELINE = '9420589';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The baseline's `src/<subpath>/index.ts` module, or undefined when it cannot be had. */
export async function loadBaseline<T>(
  subpath: string,
): Promise<{ ref: string; mod: T } | undefined> {
  const ref = process.env.AZS_BENCH_BASELINE ?? DEFAULT_BASELINE;
  if (!/^[\w./-]{1,100}$/.test(ref)) return undefined;
  const dir = join(root, 'node_modules', '.cache', 'azs-bench-baseline', ref.replace(/\W/g, '_'));
  try {
    if (!existsSync(join(dir, 'src'))) {
      mkdirSync(dir, { recursive: true });
      const tar = execFileSync('git', ['archive', ref, 'src'], { cwd: root, maxBuffer: 1 << 28 });
      execFileSync('tar', ['-x', '-C', dir], { input: tar });
    }
    const mod = (await import(pathToFileURL(join(dir, 'src', subpath, 'index.ts')).href)) as T;
    return { ref, mod };
  } catch {
    return undefined;
  }
}
