import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type Options, defineConfig } from 'tsup';

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number];

/**
 * Inlines Lua files: in a folder's `lua/index.ts`, `readLuaFiles(import.meta.url, ['a', ...])`
 * (src/core/lua-files.ts, which reads the files from disk when run from source) becomes an
 * object of the files' text, so the bundles carry the scripts and read no file at run time.
 */
const inlineLuaFiles: EsbuildPlugin = {
  name: 'inline-lua-files',
  setup(build) {
    build.onLoad({ filter: /[\\/]lua[\\/]index\.ts$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const call = /readLuaFiles\(\s*import\.meta\.url,\s*(\[[^\]]*\])\s*,?\s*\)/.exec(source);
      if (!call) return undefined;
      const names = JSON.parse(
        (call[1] as string).replace(/'/g, '"').replace(/,\s*\]$/, ']'),
      ) as string[];
      const files = names.map((n) => join(dirname(args.path), `${n}.lua`));
      const entries = names.map(
        (n, i) =>
          `${JSON.stringify(n)}: ${JSON.stringify(readFileSync(files[i] as string, 'utf8'))}`,
      );
      return {
        // A function, so `$'` and `$&` in the Lua (patterns like '^(%d+)$') stay as they are.
        contents: source.replace(call[0], () => `Object.freeze({ ${entries.join(', ')} })`),
        loader: 'ts',
        watchFiles: files,
      };
    });
  },
};

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
  esbuildPlugins: [inlineLuaFiles],
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
  esbuildPlugins: [inlineLuaFiles],
} satisfies Options;

export default defineConfig([library, cli]);
