import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { childEnv } from '../harness/env.js';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./fixtures/loaded-modules.ts', import.meta.url));

it('azscale/scaling loads neither ioredis nor pg unless a Redis store is used', async () => {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script], {
    env: childEnv(),
    timeout: 45_000,
  });
  const steps = JSON.parse(stdout.trim().split('\n').pop() as string);
  expect(steps.afterImport).toEqual({ ioredis: false, pg: false });
  expect(steps.afterEmbeddedUse).toEqual({ ioredis: false, pg: false });
  // Constructing with a URL is still lazy; the first command loads ioredis (proving the probe works).
  expect(steps.afterRedisConstruct).toEqual({ ioredis: false, pg: false });
  expect(steps.afterRedisUse).toEqual({ ioredis: true, pg: false });
});
