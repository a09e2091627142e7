/**
 * Tests whose peer library needs a newer Node than the one running: they are skipped, and the
 * reason is printed, so a run on Node 20 says what it did not test.
 *
 * @example
 * import { skipBelowNode } from '../harness/node-version.js';
 * describe.skipIf(skipBelowNode(22, 'ai@7 requires Node >= 22'))('AI SDK adapter', () => { ... });
 */

/** The major version of the Node running the tests, e.g. 22. */
export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/** True when the running Node's major version is `major` or newer. */
export function nodeAtLeast(major: number): boolean {
  return NODE_MAJOR >= major;
}

const printed = new Set<string>();

/**
 * True (skip) when the running Node is older than `major`; then prints, once per reason,
 * `skipped on Node vX: <reason>` to stderr, which vitest shows with the test file's name.
 */
export function skipBelowNode(major: number, reason: string): boolean {
  if (nodeAtLeast(major)) return false;
  const line = `skipped on Node ${process.version} (needs Node >= ${major}): ${reason}`;
  if (!printed.has(line)) {
    printed.add(line);
    console.warn(line);
  }
  return true;
}
