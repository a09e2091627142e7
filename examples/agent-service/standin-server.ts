/**
 * Serves a {@link ChatModel} (the local stand-in by default) as an OpenAI-compatible
 * `/v1/chat/completions` endpoint on loopback, with SSE streaming and usage, so the AI SDK's
 * `@ai-sdk/openai-compatible` provider can talk to it exactly as it would to a real provider.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ChatModel, type ChatRequest, LLMCallError } from './llm.js';

/** A running stand-in endpoint. */
export interface StandinServer {
  /** e.g. `http://127.0.0.1:PORT/v1` */
  baseURL: string;
  close(): Promise<void>;
}

/** Starts the endpoint on 127.0.0.1 and a free port. */
export async function serveChatModel(model: ChatModel): Promise<StandinServer> {
  const server = createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: ChatRequest & { stream?: boolean };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid JSON' } }));
      return;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const { stream, stream_options: _so, ...request } = body;
    let completion: Awaited<ReturnType<ChatModel['complete']>>;
    try {
      completion = await model.complete(request as ChatRequest, abort.signal);
    } catch (e) {
      const status = e instanceof LLMCallError && e.status >= 400 ? e.status : 500;
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(e instanceof LLMCallError && e.retryAfter
          ? { 'retry-after': String(e.retryAfter) }
          : {}),
      });
      res.end(JSON.stringify({ error: { message: (e as Error).message } }));
      return;
    }
    const id = `chatcmpl-${Date.now().toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: completion.inputTokens,
      completion_tokens: completion.outputTokens,
      total_tokens: completion.inputTokens + completion.outputTokens,
    };
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model: completion.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: completion.content },
              finish_reason: 'stop',
            },
          ],
          usage,
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta: object, finish: string | null, extra: object = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: completion.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
    res.write(chunk({ role: 'assistant', content: '' }, null));
    for (const piece of completion.content.match(/\S+\s*/g) ?? [completion.content]) {
      res.write(chunk({ content: piece }, null));
    }
    res.write(chunk({}, 'stop'));
    res.write(
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: completion.model, choices: [], usage })}\n\n`,
    );
    res.end('data: [DONE]\n\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
