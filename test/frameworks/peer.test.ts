import { describe, expect, it } from 'vitest';
import { isMissingDependencyError } from '../../src/core/errors.js';
import { assertPeer, requirePeer } from '../../src/frameworks/peer.js';

describe('framework peers', () => {
  it('a missing peer is a MissingDependencyError naming the package, not a file of it', () => {
    let caught: unknown;
    try {
      assertPeer('azscale-test-no-such-framework', 'azscale/express');
    } catch (e) {
      caught = e;
    }
    expect(isMissingDependencyError(caught)).toBe(true);
    const err = caught as Error & { context?: Record<string, unknown> };
    expect(err.message).toContain('"azscale-test-no-such-framework"');
    expect(err.message).toContain('npm install azscale-test-no-such-framework');
    expect(err.message).not.toContain('package.json');
    expect(err.context?.package).toBe('azscale-test-no-such-framework');
  });

  it('an installed peer passes assertPeer and loads through requirePeer', () => {
    expect(() => assertPeer('express', 'azscale/express')).not.toThrow();
    expect(typeof requirePeer<unknown>('express', 'azscale/express')).toBe('function');
  });
});
