/**
 * The middleware's types fit both AI SDK majors' `wrapLanguageModel` (checked by `tsc` over the
 * test folder), and the declared specification version matches the installed major.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { wrapLanguageModel } from 'ai';
import { wrapLanguageModel as wrapLanguageModel6 } from 'ai6';
import { createOpenAICompatible as createOpenAICompatible2 } from 'ai-sdk-openai-compatible-v2';
import { describe, expect, it } from 'vitest';
import { azscaleMiddleware } from '../../src/ai/index.js';
import { assertPeerInstalled } from '../../src/ai/peer.js';
import { isMissingDependencyError } from '../../src/core/index.js';

describe('azscaleMiddleware types and version', () => {
  it('fits AI SDK 7 (v4) and AI SDK 6 (v3, with specificationVersion) without casts', () => {
    const p7 = createOpenAICompatible({ name: 'p', baseURL: 'http://127.0.0.1:9/v1' });
    const m7 = wrapLanguageModel({ model: p7('x'), middleware: azscaleMiddleware() });
    expect(m7.modelId).toBe('x');
    const p6 = createOpenAICompatible2({ name: 'p', baseURL: 'http://127.0.0.1:9/v1' });
    const m6 = wrapLanguageModel6({
      model: p6('y'),
      middleware: azscaleMiddleware({ specificationVersion: 'v3' }),
    });
    expect(m6.modelId).toBe('y');
  });

  it('declares the installed major by default and rejects bad options with the option named', () => {
    // `ai` resolves to AI SDK 7 in this repository.
    expect(azscaleMiddleware().specificationVersion).toBe('v4');
    expect(() => azscaleMiddleware({ fallbackModels: [{}] as never })).toThrow(
      /fallbackModels\[0\]/,
    );
    expect(() => azscaleMiddleware({ specificationVersion: 'v2' as never })).toThrow(
      /specificationVersion/,
    );
    expect(() => azscaleMiddleware({ ttl: -1 })).toThrow(/ttl/);
    expect(() => azscaleMiddleware({ cache: {} as never })).toThrow(/DistributedCache/);
    expect(() => azscaleMiddleware({ optimizer: {} as never })).toThrow(/CostOptimizer/);
  });

  it('a missing peer is a MissingDependencyError naming the package', () => {
    let err: unknown;
    try {
      assertPeerInstalled('azs-not-installed-peer', 'azscale/ai');
    } catch (e) {
      err = e;
    }
    expect(isMissingDependencyError(err)).toBe(true);
    expect((err as Error).message).toContain('"azs-not-installed-peer"');
    expect((err as { context: { package: string } }).context.package).toBe(
      'azs-not-installed-peer',
    );
    expect(assertPeerInstalled('ai', 'azscale/ai')).toMatch(/package\.json$/);
  });
});
