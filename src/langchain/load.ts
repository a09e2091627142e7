/**
 * `@langchain/core` is an optional peer: loaded when `azscale/langchain` is imported, and only
 * then. A missing package is a `MissingDependencyError` naming it. LangChain tells its classes
 * apart by duck typing (`isInstance`), so the copy loaded here works with the app's own.
 */
import { MissingDependencyError } from '../core/errors.js';
import { lazyRequire } from '../core/lazy-require.js';
import { resolvePeer } from '../ai/peer.js';

/** @internal */
export function loadLangChain<T>(subpath: string): T {
  if (resolvePeer('@langchain/core') === undefined) {
    throw new MissingDependencyError(
      'azscale/langchain needs the package "@langchain/core", which is not installed: npm install @langchain/core',
      { context: { package: '@langchain/core', subpath: 'azscale/langchain' } },
    );
  }
  return lazyRequire<T>(`@langchain/core/${subpath}`);
}
