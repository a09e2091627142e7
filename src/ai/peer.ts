/**
 * Optional peer packages are checked when their subpath is imported, so a missing one fails
 * at startup with the package's name rather than deep inside the first call.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MissingDependencyError } from '../core/errors.js';

function bases(): string[] {
  const out: string[] = [];
  if (typeof __filename === 'string') out.push(__filename);
  else {
    try {
      out.push(import.meta.url);
    } catch {
      // import.meta is unavailable in this build format; the working directory remains.
    }
  }
  out.push(join(process.cwd(), 'package.json'));
  return out;
}

/** The resolved path of `name`'s `package.json`, or undefined when it is not installed. */
export function resolvePeer(name: string): string | undefined {
  for (const base of bases()) {
    const req = createRequire(base);
    try {
      return req.resolve(`${name}/package.json`);
    } catch {
      // Packages whose exports map hides package.json: their entry point proves them present.
    }
    try {
      return req.resolve(name);
    } catch {
      // Not visible from this base; try the next.
    }
  }
  return undefined;
}

/**
 * Throws {@link MissingDependencyError} naming `name` unless it can be resolved from azscale's
 * location or the working directory.
 */
export function assertPeerInstalled(name: string, subpath: string): string {
  const path = resolvePeer(name);
  if (path === undefined) {
    throw new MissingDependencyError(
      `${subpath} needs the package "${name}", which is not installed: npm install ${name}`,
      { context: { package: name, subpath } },
    );
  }
  return path;
}
