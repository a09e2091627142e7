import { defineConfig } from 'tsup';

const modules = ['session', 'cache', 'db', 'worker', 'resilience', 'scaling', 'observability'];

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    ...Object.fromEntries(modules.map((m) => [`${m}/index`, `src/${m}/index.ts`])),
  },
  format: ['esm', 'cjs'],
  dts: true,
  // One shared chunk graph per format, so the ESM and the CJS build each hold a single copy of
  // the error classes and connection helpers however many subpaths an app imports.
  splitting: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  treeshake: true,
  // p-limit 7 is ESM-only: a CJS `require` of it yields the namespace object and the first
  // limiter call throws. Bundling it (and its one dependency) keeps both builds working.
  noExternal: ['p-limit', 'yocto-queue'],
});
