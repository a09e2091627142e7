import { MissingDependencyError } from '../core/errors.js';
import { lazyRequire } from '../core/lazy-require.js';

/**
 * Loads an optional peer package of a framework subpath, or fails with a MissingDependencyError
 * that names it. Called when the subpath is imported, so the failure comes at the import line,
 * not at the first request.
 */
export function requirePeer<T>(name: string, subpath: string): T {
  return loadPeer<T>(name, name, subpath);
}

/** Loads `specifier` (a file of package `name`); a failure names the package, not the file. */
function loadPeer<T>(specifier: string, name: string, subpath: string): T {
  try {
    return lazyRequire<T>(specifier);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new MissingDependencyError(
        `${subpath} needs the package "${name}", which is not installed: run npm install ${name}`,
        { cause: e, context: { package: name, subpath } },
      );
    }
    if (code === 'ERR_REQUIRE_ESM') {
      // An ESM-only framework (NestJS 11+) loads through require(esm), which Node has from 20.19.
      throw new MissingDependencyError(
        `${subpath} cannot load "${name}" on Node ${process.versions.node}: it is ESM-only and needs Node >= 20.19`,
        { cause: e, context: { package: name, subpath } },
      );
    }
    throw e;
  }
}

/** Throws the same error as {@link requirePeer} when `name` cannot be resolved; loads nothing. */
export function assertPeer(name: string, subpath: string): void {
  try {
    loadPeer<unknown>(`${name}/package.json`, name, subpath);
  } catch (e) {
    // The package is there; its exports map just does not list package.json.
    if ((e as { code?: unknown }).code === 'ERR_PACKAGE_PATH_NOT_EXPORTED') return;
    throw e;
  }
}
