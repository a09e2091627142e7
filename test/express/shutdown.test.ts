/**
 * SIGTERM during load loses nothing on Express (gracefulShutdown); see drain-scenario.ts.
 */
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { sigtermDuringLoad } from './drain-scenario.js';

const APP = fileURLToPath(new URL('./fixtures/drain-app.ts', import.meta.url));

describe('gracefulShutdown (Express)', () => {
  it('SIGTERM during load loses no accepted request or task', async () => {
    await sigtermDuringLoad(APP);
  }, 120_000);
});
