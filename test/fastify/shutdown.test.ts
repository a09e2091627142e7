/**
 * SIGTERM during load loses nothing on Fastify (azscalePlugin with `signals`); the scenario is
 * the Express one (test/express/drain-scenario.ts).
 */
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { sigtermDuringLoad } from '../express/drain-scenario.js';

const APP = fileURLToPath(new URL('./fixtures/drain-app.ts', import.meta.url));

describe('azscalePlugin drain (Fastify)', () => {
  it('SIGTERM during load loses no accepted request or task', async () => {
    await sigtermDuringLoad(APP);
  }, 120_000);
});
