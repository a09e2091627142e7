import { describe, expect, it, vi } from 'vitest';
import { NODE_MAJOR, nodeAtLeast, skipBelowNode } from './node-version.js';

describe('node-version helper', () => {
  it('reads the running major version', () => {
    expect(NODE_MAJOR).toBe(Number(process.version.slice(1).split('.')[0]));
    expect(nodeAtLeast(NODE_MAJOR)).toBe(true);
    expect(nodeAtLeast(NODE_MAJOR + 1)).toBe(false);
    expect(nodeAtLeast(20)).toBe(true);
  });

  it('skips below the version and prints the reason once', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      expect(skipBelowNode(NODE_MAJOR, 'never printed')).toBe(false);
      expect(skipBelowNode(NODE_MAJOR + 1, 'peer x needs it')).toBe(true);
      expect(skipBelowNode(NODE_MAJOR + 1, 'peer x needs it')).toBe(true);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]?.[0])).toContain(
        `needs Node >= ${NODE_MAJOR + 1}): peer x needs it`,
      );
    } finally {
      warn.mockRestore();
    }
  });
});
