/**
 * Issue 17: the queue-wide rate limit (`rateLimit: { max, per }`) across several workers, each
 * with its own TaskQueue handle, on memory, Redis standalone and Redis Cluster.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isValidationError } from '../../src/core/errors.js';
import { BackgroundWorker, TaskQueue, type TaskQueueOptions } from '../../src/worker/index.js';
import { KINDS, redisFor, workerFixture } from './fixture.js';

/** A handler may start this long after its claim on a loaded machine (ms). */
const START_SLACK_MS = 300;

describe.each(KINDS)('queue rate limit: %s', (kind) => {
  const { opened, workers } = workerFixture(kind);

  it('3 workers together start at most 5 tasks per second, without busy claiming', async () => {
    const options: TaskQueueOptions = {
      name: `wr-${randomBytes(5).toString('hex')}`,
      redis: redisFor(kind),
      prefix: 'azs-test-worker:',
      rateLimit: { max: 5, per: 1 },
    };
    const producer = new TaskQueue(options);
    opened.push(producer);
    const starts: number[] = [];
    let claims = 0;
    for (let i = 0; i < 3; i++) {
      const q = new TaskQueue(options);
      opened.push(q);
      const b = q.backend;
      const claim = b.claim.bind(b);
      b.claim = (req) => {
        claims++;
        return claim(req);
      };
      const w = new BackgroundWorker({
        queue: q,
        numWorkers: 10,
        visibilityTimeout: 30,
        handler: () => {
          starts.push(Date.now());
          return null;
        },
      });
      workers.push(w);
      await w.start();
    }
    const ids = await producer.submitTasks(Array.from({ length: 15 }, (_, i) => i));
    for (const id of ids) await producer.waitForResult(id, { timeout: 20 });
    starts.sort((a, b) => a - b);
    expect(starts).toHaveLength(15);
    // Any 6 consecutive starts span at least the window: never 6 in one second.
    for (let i = 0; i + 5 < starts.length; i++) {
      expect((starts[i + 5] as number) - (starts[i] as number)).toBeGreaterThanOrEqual(
        1000 - START_SLACK_MS,
      );
    }
    // Three windows' worth of tasks take at least two window lengths.
    expect((starts[14] as number) - (starts[0] as number)).toBeGreaterThanOrEqual(
      2000 - START_SLACK_MS,
    );
    // Held-back workers sleep until the window frees a slot instead of polling: a busy loop
    // would make thousands of claims in these 2+ seconds.
    expect(claims).toBeLessThan(150);
  }, 30_000);

  it('rejects bad rateLimit options with ValidationError', () => {
    const bad: unknown[] = [
      null,
      5,
      {},
      { max: 5 },
      { per: 1 },
      { max: 0, per: 1 },
      { max: 1.5, per: 1 },
      { max: Number.NaN, per: 1 },
      { max: 5, per: 0 },
      { max: 5, per: -1 },
      { max: 5, per: Number.POSITIVE_INFINITY },
      { max: '5', per: 1 },
    ];
    for (const rateLimit of bad) {
      let err: unknown;
      try {
        new TaskQueue({ name: 'wr-bad', redis: redisFor(kind), rateLimit: rateLimit as never });
      } catch (e) {
        err = e;
      }
      expect(isValidationError(err)).toBe(true);
    }
  });
});
