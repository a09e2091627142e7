/**
 * The AI SDK for the running Node: AI SDK 7 needs Node 22 or later, so on Node 20 the service
 * uses AI SDK 6 (installed here as the `ai6` alias; in your project, install the major your Node
 * runs). azscale's middleware serves both.
 */
import type * as AI7 from 'ai';

/** A provider model `wrapLanguageModel` accepts. */
export type ProviderModel = Parameters<typeof AI7.wrapLanguageModel>[0]['model'];

/** The parts of the AI SDK the service uses. */
export interface AISdk {
  major: 6 | 7;
  streamText: typeof AI7.streamText;
  generateText: typeof AI7.generateText;
  wrapLanguageModel: typeof AI7.wrapLanguageModel;
  /** The system prompt option: `instructions` in AI SDK 7, `system` in 6. */
  system(text: string): Record<string, string>;
  /** An OpenAI-compatible provider at `baseURL`. */
  provider(baseURL: string, apiKey?: string): (modelId: string) => ProviderModel;
}

/** Loads the AI SDK major that supports this Node. */
export async function loadAISdk(): Promise<AISdk> {
  const node = Number(process.versions.node.split('.')[0]);
  if (node >= 22) {
    const ai = await import('ai');
    const oc = await import('@ai-sdk/openai-compatible');
    return {
      major: 7,
      system: (text) => ({ instructions: text }),
      streamText: ai.streamText,
      generateText: ai.generateText,
      wrapLanguageModel: ai.wrapLanguageModel,
      provider: (baseURL, apiKey) =>
        oc.createOpenAICompatible({ name: 'llm', baseURL, apiKey, includeUsage: true }),
    };
  }
  const ai = await import('ai6');
  const oc = await import('ai-sdk-openai-compatible-v2');
  // The two majors differ in their model types; the service uses only what both share.
  return {
    major: 6,
    system: (text) => ({ system: text }),
    streamText: ai.streamText as unknown as AISdk['streamText'],
    generateText: ai.generateText as unknown as AISdk['generateText'],
    wrapLanguageModel: ai.wrapLanguageModel as unknown as AISdk['wrapLanguageModel'],
    provider: (baseURL, apiKey) =>
      oc.createOpenAICompatible({
        name: 'llm',
        baseURL,
        apiKey,
        includeUsage: true,
      }) as unknown as (modelId: string) => ProviderModel,
  };
}
