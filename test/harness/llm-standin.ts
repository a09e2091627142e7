/**
 * A local OpenAI-compatible provider for the LLM tests: real HTTP on 127.0.0.1, real SSE.
 * `POST /v1/chat/completions` answers deterministically from the request (the same request gets
 * the same answer), reports usage, returns a tool call when tools are offered and no tool result
 * is in the conversation yet, and JSON when a response format asks for it. Failures are injected
 * per model: HTTP statuses (429 with Retry-After, 5xx), a hang (for timeouts), and a stream that
 * breaks after a few chunks (the socket is destroyed mid-body, as a dying upstream does).
 *
 * `GET /calls` reports the counts, so a child process's test can read them over HTTP too.
 */
import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the stand-in does for one model. */
export interface StandinBehavior {
  /** Answer every call with this HTTP status (429, 500, 503, ...). */
  status?: number;
  /** Only for the next N calls (then back to normal). @default every call */
  count?: number;
  /** `Retry-After` header (seconds) sent with `status`. */
  retryAfter?: number;
  /** Delay before the answer starts, in ms. */
  delayMs?: number;
  /** Delay between stream chunks, in ms. @default 0 */
  chunkDelayMs?: number;
  /** Streams: destroy the connection after this many content chunks. */
  breakAfterChunks?: number;
  /** Overrides the answer text. */
  text?: string;
  /** Overrides the reported completion tokens. */
  completionTokens?: number;
}

/** One request as the stand-in saw it. */
export interface StandinCall {
  model: string;
  stream: boolean;
  body: Record<string, unknown>;
  at: number;
}

/** A running stand-in. */
export interface LLMStandin {
  /** e.g. `http://127.0.0.1:PORT/v1` */
  readonly baseURL: string;
  /** Every request received (failed ones included). */
  readonly calls: StandinCall[];
  /** Calls for one model. */
  callsFor(model: string): number;
  /** Sets (or with `undefined` clears) a model's behaviour. */
  behave(model: string, behavior: StandinBehavior | undefined): void;
  /** Requests being answered now, and the most seen at once. */
  readonly inFlight: { now: number; max: number };
  /** Forgets the calls seen. */
  reset(): void;
  close(): Promise<void>;
}

interface Message {
  role?: string;
  content?: unknown;
}

function tokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && 'text' in p ? String(p.text) : ''))
      .join('');
  }
  return '';
}

/** The deterministic answer to one request. */
export function standinAnswer(body: Record<string, unknown>): {
  text: string;
  toolCall?: { id: string; name: string; arguments: string };
  promptTokens: number;
} {
  const messages = (Array.isArray(body.messages) ? body.messages : []) as Message[];
  const prompt = messages.map((m) => textOf(m.content)).join('\n');
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const digest = createHash('sha256').update(JSON.stringify(body.messages)).digest('hex');
  const tools = Array.isArray(body.tools) ? (body.tools as { function?: { name?: string } }[]) : [];
  const hasToolResult = messages.some((m) => m.role === 'tool');
  const promptTokens = tokens(prompt);
  if (tools.length > 0 && !hasToolResult && body.tool_choice !== 'none') {
    const name = tools[0]?.function?.name ?? 'tool';
    return {
      text: '',
      toolCall: {
        id: `call_${digest.slice(0, 12)}`,
        name,
        arguments: JSON.stringify({ city: textOf(last?.content).slice(0, 40) }),
      },
      promptTokens,
    };
  }
  const format = body.response_format as { type?: string } | undefined;
  if (format && (format.type === 'json_schema' || format.type === 'json_object')) {
    return {
      text: JSON.stringify({
        answer: `echo ${textOf(last?.content).slice(0, 60)}`,
        id: digest.slice(0, 8),
      }),
      promptTokens,
    };
  }
  return {
    text: `You said: ${textOf(last?.content).slice(0, 200)}. Answer ${digest.slice(0, 8)} from ${String(body.model)}.`,
    promptTokens,
  };
}

function chunkText(text: string): string[] {
  const parts = text.match(/\S+\s*/g) ?? [];
  return parts.length > 0 ? parts : [text];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a stand-in provider on a free loopback port. */
export async function startLLMStandin(): Promise<LLMStandin> {
  const calls: StandinCall[] = [];
  const inFlight = { now: 0, max: 0 };
  const behaviors = new Map<string, StandinBehavior>();
  const sockets = new Set<import('node:net').Socket>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/calls') {
      const byModel: Record<string, number> = {};
      for (const c of calls) byModel[c.model] = (byModel[c.model] ?? 0) + 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ total: calls.length, byModel }));
      return;
    }
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'invalid JSON' } }));
      return;
    }
    const model = String(body.model ?? '');
    const stream = body.stream === true;
    calls.push({ model, stream, body, at: Date.now() });
    let active = behaviors.get(model);
    if (active?.count !== undefined) {
      if (active.count <= 0) {
        behaviors.delete(model);
        active = undefined;
      } else active.count--;
    }
    if (active?.delayMs) await sleep(active.delayMs);
    if (active?.status) {
      res.writeHead(active.status, {
        'content-type': 'application/json',
        ...(active.retryAfter !== undefined ? { 'retry-after': String(active.retryAfter) } : {}),
      });
      res.end(JSON.stringify({ error: { message: `injected ${active.status}`, type: 'standin' } }));
      return;
    }
    const answer = standinAnswer(body);
    const text = active?.text ?? answer.text;
    const completionTokens =
      active?.completionTokens ??
      (answer.toolCall ? tokens(answer.toolCall.arguments) : tokens(text));
    const usage = {
      prompt_tokens: answer.promptTokens,
      completion_tokens: completionTokens,
      total_tokens: answer.promptTokens + completionTokens,
    };
    const id = `chatcmpl-${createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 10)}`;
    const created = Math.floor(Date.now() / 1000);
    const finish = answer.toolCall ? 'tool_calls' : 'stop';
    if (!stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: answer.toolCall ? null : text,
                ...(answer.toolCall
                  ? {
                      tool_calls: [
                        {
                          id: answer.toolCall.id,
                          type: 'function',
                          function: {
                            name: answer.toolCall.name,
                            arguments: answer.toolCall.arguments,
                          },
                        },
                      ],
                    }
                  : {}),
              },
              finish_reason: finish,
            },
          ],
          usage,
        }),
      );
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    const send = (delta: Record<string, unknown>, finishReason: string | null, extra = {}) =>
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`,
      );
    send({ role: 'assistant', content: '' }, null);
    let sent = 0;
    if (answer.toolCall) {
      send(
        {
          tool_calls: [
            {
              index: 0,
              id: answer.toolCall.id,
              type: 'function',
              function: { name: answer.toolCall.name, arguments: '' },
            },
          ],
        },
        null,
      );
      send(
        { tool_calls: [{ index: 0, function: { arguments: answer.toolCall.arguments } }] },
        null,
      );
    } else {
      for (const piece of chunkText(text)) {
        if (active?.breakAfterChunks !== undefined && sent >= active.breakAfterChunks) {
          // A dying upstream: the body stops without its terminating chunk (after what was
          // sent has reached the client).
          await sleep(50);
          res.socket?.destroy();
          return;
        }
        send({ content: piece }, null);
        sent++;
        if (active?.chunkDelayMs) await sleep(active.chunkDelayMs);
        else if (active?.breakAfterChunks !== undefined) await sleep(5);
      }
    }
    send({}, finish);
    const so = body.stream_options as { include_usage?: boolean } | undefined;
    if (so?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  }

  const server: Server = createServer((req, res) => {
    inFlight.max = Math.max(inFlight.max, ++inFlight.now);
    res.on('close', () => inFlight.now--);
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    calls,
    inFlight,
    callsFor: (model) => calls.filter((c) => c.model === model).length,
    behave(model, behavior) {
      if (behavior === undefined) behaviors.delete(model);
      else behaviors.set(model, { ...behavior });
    },
    reset() {
      calls.length = 0;
      inFlight.max = inFlight.now;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
