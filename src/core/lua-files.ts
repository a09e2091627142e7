import { readFileSync } from 'node:fs';

/**
 * Lua scripts kept as `.lua` files (each with a header naming its KEYS and ARGV), loaded in one
 * place. `readLuaFiles(import.meta.url, ['claim', ...])` in a folder's `lua/index.ts` returns
 * the text of `lua/claim.lua`, ... by name.
 *
 * Run from source (tsx, vitest) the files are read from disk once, when the module loads. The
 * build replaces the call with the files' text (the `inlineLuaFiles` esbuild plugin in
 * tsup.config.ts), so the package ships no `.lua` files and its ESM and CJS builds read nothing
 * at run time. A text import (`import x from './claim.lua'`) would need a loader in every runner
 * that executes the source, and tsx, which runs the benchmarks, examples and test children,
 * has none.
 *
 * @param base The URL of the module next to the files (`import.meta.url`).
 * @param names File names without `.lua`; must be literal strings (the build reads them).
 * @returns The files' text by name.
 * @throws Error when a file is missing (a packaging bug, not a user error).
 */
export function readLuaFiles<N extends string>(
  base: string | URL,
  names: readonly N[],
): Readonly<Record<N, string>> {
  const out = {} as Record<N, string>;
  for (const name of names) out[name] = readFileSync(new URL(`./${name}.lua`, base), 'utf8');
  return Object.freeze(out);
}
