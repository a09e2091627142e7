import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/harness/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    // Under CI the JSON results also go to a file (one per Node version, named by .ci/run in
    // AZS_VITEST_RESULTS), from which .ci/run prints one plain "N passed, N failed" line.
    reporters: process.env.CI
      ? [
          'default',
          [
            'json',
            {
              outputFile:
                process.env.AZS_VITEST_RESULTS ?? 'node_modules/.cache/azscale/vitest-results.json',
            },
          ],
        ]
      : ['default'],
  },
});
