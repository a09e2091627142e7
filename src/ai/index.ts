/**
 * The Vercel AI SDK adapter (`azscale/ai`): {@link azscaleMiddleware} for
 * `wrapLanguageModel`. Needs the `ai` package (AI SDK 6 or 7); importing this subpath without it
 * throws a `MissingDependencyError` naming it.
 * @packageDocumentation
 */
import { assertPeerInstalled } from './peer.js';

assertPeerInstalled('ai', 'azscale/ai');

export * from './middleware.js';
export {
  type AIGenerateResultLike,
  type AIStreamPartLike,
  type AIUsage,
  fromAIUsage,
  toAIUsage,
} from './convert.js';
