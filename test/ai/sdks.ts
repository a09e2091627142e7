/**
 * The two AI SDK majors the adapter supports, loaded as real packages: `ai` (7, Node >= 22) with
 * `@ai-sdk/openai-compatible` 3, and `ai6` (npm alias of ai@6) with its openai-compatible 2.
 */
// The two majors' types differ in detail; the tests drive both through one loose shape.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = any;

export interface SdkUnderTest {
  name: string;
  major: 6 | 7;
  /** Why the suite is skipped on this Node, or undefined when it runs. */
  skip: string | undefined;
  load(): Promise<{ ai: Loose; provider: (baseURL: string, name?: string) => Loose }>;
}

const nodeMajor = Number(process.versions.node.split('.')[0]);

export const SDKS: SdkUnderTest[] = [
  {
    name: 'AI SDK 7',
    major: 7,
    skip:
      nodeMajor >= 22
        ? undefined
        : `AI SDK 7 needs Node >= 22 (this is Node ${process.versions.node})`,
    async load() {
      const ai = await import('ai');
      const oc = await import('@ai-sdk/openai-compatible');
      return {
        ai,
        provider: (baseURL: string, name = 'standin') =>
          oc.createOpenAICompatible({ name, baseURL, apiKey: 'test', includeUsage: true }),
      };
    },
  },
  {
    name: 'AI SDK 6',
    major: 6,
    skip: undefined,
    async load() {
      const ai = await import('ai6');
      const oc = await import('ai-sdk-openai-compatible-v2');
      return {
        ai,
        provider: (baseURL: string, name = 'standin') =>
          oc.createOpenAICompatible({ name, baseURL, apiKey: 'test', includeUsage: true }),
      };
    },
  },
];

for (const s of SDKS) {
  if (s.skip) console.warn(`[test/ai] skipping ${s.name}: ${s.skip}`);
}
