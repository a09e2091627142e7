import { type Options, defineConfig } from 'tsup';

const modules = [
  'session',
  'cache',
  'db',
  'worker',
  'resilience',
  'scaling',
  'observability',
  'llm',
  'ai',
  'langchain',
  'dashboard',
  'testing',
];
// Framework adapters: one subpath each; the frameworks stay external (optional peers, loaded at
// run time from the app's own node_modules).
const frameworks = ['express', 'fastify', 'nestjs', 'hono'];
const frameworkPackages = [
  'express',
  'express-session',
  'fastify',
  'fastify-plugin',
  '@fastify/session',
  '@nestjs/common',
  '@nestjs/core',
  '@nestjs/terminus',
  'reflect-metadata',
  'rxjs',
  'hono',
  '@hono/node-server',
];
// Optional peers of azscale/ai and azscale/langchain: never bundled, loaded only by those subpaths.
const llmPeers = ['ai', /^@ai-sdk\//, /^@langchain\//];
// azscale/testing takes vitest's API from the worker it runs in; it never imports vitest itself
// (vitest is ESM-only and its CommonJS entry throws), but its types must not be bundled either.
const testPeers = ['vitest'];

const library = {
  entry: {
    index: 'src/index.ts',
    ...Object.fromEntries(modules.map((m) => [`${m}/index`, `src/${m}/index.ts`])),
    ...Object.fromEntries(frameworks.map((m) => [`${m}/index`, `src/${m}/index.ts`])),
  },
  external: [...frameworkPackages, ...llmPeers, ...testPeers],
  format: ['esm', 'cjs'] as Options['format'],
  dts: true,
  // One shared chunk graph per format, so the ESM and the CJS build each hold a single copy of
  // the error classes and connection helpers however many subpaths an app imports.
  splitting: true,
  sourcemap: true,
  clean: false,
  target: 'node20',
  platform: 'node',
  treeshake: true,
  // p-limit 7 is ESM-only: a CJS `require` of it yields the namespace object and the first
  // limiter call throws. Bundling it (and its one dependency) keeps both builds working.
  noExternal: ['p-limit', 'yocto-queue'],
} satisfies Options;

// The `azscale` command (package `bin`): ESM only, no declarations; it keeps its shebang.
const cli = {
  entry: { 'cli/main': 'src/cli/main.ts' },
  format: ['esm'] as Options['format'],
  dts: false,
  splitting: false,
  sourcemap: false,
  clean: false,
  target: 'node20',
  platform: 'node',
  noExternal: ['p-limit', 'yocto-queue'],
} satisfies Options;

export default defineConfig([library, cli]);
