/**
 * The service's LLM: a deterministic local stand-in (default, works offline) or any
 * OpenAI-compatible chat-completions API through azscale's pooled HTTP client.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpPool } from '../../src/resilience/index.js';

/** One chat message. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What the service sends: an OpenAI-style request (every field is part of the cache key). */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature: number;
  [field: string]: unknown;
}

/** What comes back. */
export interface ChatCompletion {
  content: string;
  model: string;
  inputTokens: number;
  outputTokens: number;
}

/** A chat model. */
export interface ChatModel {
  /** `local` or `openai-compatible`. */
  readonly kind: string;
  complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatCompletion>;
  close?(): Promise<void>;
}

/**
 * The provider failed. `status` is the HTTP status (0 for a network error); `retryAfter` is in
 * seconds when the provider said. 4xx other than 408/429 are the caller's fault and do not count
 * against the circuit breaker.
 */
export class LLMCallError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfter?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LLMCallError';
  }
  /** True when the failure says something about the provider's health. */
  get isProviderFailure(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Rough token count (4 characters a token), used by the stand-in and when a provider omits usage. */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** mulberry32: a tiny seeded PRNG, so the stand-in's failures are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link LocalModel}. */
export interface LocalModelOptions {
  /** Response time of one call, in milliseconds. @default 150 */
  latencyMs?: number;
  /** Fraction 0..1 of calls that fail with a 503. @default 0 */
  failureRate?: number;
  /** Seed of the failure sequence. @default 42 */
  seed?: number;
}

/**
 * A deterministic stand-in for an LLM: the same request always gets the same answer (derived from
 * a hash of the request), after `latencyMs`. Failures follow a seeded sequence at `failureRate`,
 * and {@link LocalModel.outage} can be switched on to simulate a provider outage.
 */
export class LocalModel implements ChatModel {
  readonly kind = 'local';
  /** While true every call fails with a 503, as a provider outage would. */
  outage = false;
  /** Calls that reached the model (cache misses). */
  calls = 0;
  /** Calls running now, and the most seen at once (what the concurrency limiter bounds). */
  inFlight = 0;
  maxInFlight = 0;
  latencyMs: number;
  failureRate: number;
  private readonly random: () => number;

  constructor(options: LocalModelOptions = {}) {
    this.latencyMs = options.latencyMs ?? 150;
    this.failureRate = options.failureRate ?? 0;
    this.random = prng(options.seed ?? 42);
  }

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatCompletion> {
    this.calls++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await this.answer(request, signal);
    } finally {
      this.inFlight--;
    }
  }

  private async answer(request: ChatRequest, signal?: AbortSignal): Promise<ChatCompletion> {
    if (this.latencyMs > 0) await sleep(this.latencyMs, undefined, { signal });
    if (this.outage) throw new LLMCallError('local model unavailable (injected outage)', 503);
    if (this.failureRate > 0 && this.random() < this.failureRate) {
      throw new LLMCallError('local model failed (LLM_FAILURE_RATE)', 503);
    }
    const last = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
    const digest = createHash('sha256').update(JSON.stringify(request)).digest('hex').slice(0, 8);
    const turns = request.messages.filter((m) => m.role === 'user').length;
    const content = `You said "${last.length > 200 ? `${last.slice(0, 200)}...` : last}". This is turn ${turns} of our conversation. [${request.model} stand-in, answer ${digest}]`;
    const input = request.messages.reduce((n, m) => n + estimateTokens(m.content), 0);
    return {
      content,
      model: request.model,
      inputTokens: input,
      outputTokens: estimateTokens(content),
    };
  }
}

/** Options of {@link OpenAICompatibleModel}. */
export interface OpenAICompatibleModelOptions {
  /** e.g. `https://api.openai.com/v1` (`/chat/completions` is appended). */
  baseUrl: string;
  apiKey?: string;
  /** Seconds one call may take. @default 30 */
  timeout?: number;
  /** azscale's pooled HTTP client (the seed's `max_connections=100`). */
  pool: HttpPool;
}

/** Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, Ollama, LiteLLM, ...). */
export class OpenAICompatibleModel implements ChatModel {
  readonly kind = 'openai-compatible';
  constructor(private readonly o: OpenAICompatibleModelOptions) {}

  async complete(request: ChatRequest, signal?: AbortSignal): Promise<ChatCompletion> {
    const timeout = AbortSignal.timeout((this.o.timeout ?? 30) * 1000);
    const res = await this.o.pool
      .fetch(`${this.o.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}),
        },
        body: JSON.stringify(request),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
      .catch((e: unknown) => {
        throw new LLMCallError(`LLM endpoint unreachable: ${(e as Error).message}`, 0, undefined, {
          cause: e,
        });
      });
    const text = await res.text();
    if (!res.ok) {
      const ra = Number(res.headers.get('retry-after'));
      throw new LLMCallError(
        `LLM endpoint answered ${res.status}: ${text.slice(0, 200)}`,
        res.status,
        Number.isFinite(ra) && ra > 0 ? ra : undefined,
      );
    }
    let body: {
      model?: string;
      choices?: { message?: { content?: string | null } }[];
      usage?: { prompt_tokens?: number; completion_tokens?: number };
    };
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new LLMCallError('LLM endpoint returned invalid JSON', 502, undefined, { cause: e });
    }
    const content = body.choices?.[0]?.message?.content;
    if (typeof content !== 'string') {
      throw new LLMCallError('LLM endpoint returned no choices[0].message.content', 502);
    }
    return {
      content,
      model: body.model ?? request.model,
      inputTokens:
        body.usage?.prompt_tokens ??
        request.messages.reduce((n, m) => n + estimateTokens(m.content), 0),
      outputTokens: body.usage?.completion_tokens ?? estimateTokens(content),
    };
  }
}
