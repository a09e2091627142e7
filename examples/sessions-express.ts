/**
 * Distributed sessions in an Express app: any instance behind the load balancer can serve any
 * request of a conversation, and two requests of one session at the same time lose nothing.
 *
 *   node --import tsx examples/sessions-express.ts              # embedded (in memory)
 *   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/sessions-express.ts
 *
 * In your project: import { DistributedSessionManager, newSessionId } from 'azscale/session'.
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { DistributedSessionManager, newSessionId } from '../src/session/index.js';

const sessions = new DistributedSessionManager({
  ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
  ttl: 3600, // seconds, the seed's
  maxMessages: 100, // oldest dropped first
});

const app = express();
app.use(express.json({ limit: '64kb' }));

app.post('/chat', async (req, res, next) => {
  try {
    const { session_id: given, message } = req.body as { session_id?: string; message?: unknown };
    if (typeof message !== 'string' || message.length === 0) {
      res.status(400).json({ error: 'message must be a non-empty string' });
      return;
    }
    const sessionId = given ?? newSessionId();
    // An atomic append: parallel requests of one session all land, none overwrites another.
    await sessions.appendMessage(sessionId, { role: 'user', content: message });
    const { messages } = await sessions.getSession(sessionId);
    const reply = `echo #${messages.length}: ${message}`;
    const length = await sessions.appendMessage(sessionId, { role: 'assistant', content: reply });
    res.json({ session_id: sessionId, reply, messages: length });
  } catch (e) {
    next(e); // ValidationError (bad id) -> 400 below; BackendUnavailableError -> 503
  }
});

app.use(
  (
    err: Error & { code?: string },
    _req: express.Request,
    res: express.Response,
    _next: express.NextFunction,
  ) => {
    if (err.code === 'AZS_VALIDATION') res.status(400).json({ error: err.message });
    else if (err.code === 'AZS_BACKEND_UNAVAILABLE')
      res.set('retry-after', '5').status(503).json({ error: 'try again' });
    else res.status(500).json({ error: 'internal error' });
  },
);

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = async (body: unknown) =>
    (
      await fetch(`${base}/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    ).json() as Promise<{ session_id: string; messages: number }>;

  const first = await post({ message: 'hello' });
  // Ten requests of the same session at once, as an agent's parallel tool calls would send.
  await Promise.all(
    Array.from({ length: 10 }, (_, i) =>
      post({ session_id: first.session_id, message: `parallel ${i}` }),
    ),
  );
  const { messages } = await sessions.getSession(first.session_id);
  console.log(`session ${first.session_id}: ${messages.length} messages (expected 22)`);

  server.close();
  await sessions.close();
  if (messages.length !== 22) process.exitCode = 1;
});
