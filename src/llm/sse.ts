/**
 * Server-sent events from an OpenAI-compatible provider: the body's JSON payloads up to
 * `data: [DONE]`, and the provider's error statuses as typed errors.
 */
import { LLMProviderError } from '../core/errors.js';

/**
 * The JSON payloads of a server-sent-events body, up to `data: [DONE]`. A non-2xx response
 * throws {@link LLMProviderError} with its status and `Retry-After`; a body that breaks off
 * throws one with status 0.
 */
export async function* parseSSE(response: Response): AsyncGenerator<unknown> {
  await assertOk(response);
  if (!response.body)
    throw new LLMProviderError('the provider sent no response body', { status: 0 });
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = response.body.getReader();
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (e) {
        throw new LLMProviderError('the provider stream broke off', { status: 0, cause: e });
      }
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let nl = buffer.indexOf('\n');
      while (nl !== -1) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const payload = data.join('\n');
            data = [];
            if (payload === '[DONE]') return;
            yield parsePayload(payload);
          }
        } else if (line.startsWith('data:')) {
          data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
        }
        nl = buffer.indexOf('\n');
      }
    }
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield parsePayload(data.join('\n'));
  } finally {
    reader.releaseLock();
    await response.body.cancel().catch(() => undefined);
  }
}

function parsePayload(payload: string): unknown {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch (e) {
    throw new LLMProviderError('the provider sent an event that is not JSON', {
      status: 0,
      cause: e,
    });
  }
  const err = (v as { error?: { message?: unknown } } | null)?.error;
  if (err) {
    throw new LLMProviderError(
      `the provider reported an error mid-stream: ${String(err.message ?? 'unknown')}`,
      {
        status: 0,
        context: { error: err },
      },
    );
  }
  return v;
}

/** Throws {@link LLMProviderError} for a non-2xx response (reading a short error text). */
export async function assertOk(response: Response): Promise<void> {
  if (response.ok) return;
  let text = '';
  try {
    text = (await response.text()).slice(0, 300);
  } catch {
    // The error body is a courtesy; the status says enough.
  }
  const ra = Number(response.headers.get('retry-after'));
  throw new LLMProviderError(`the provider answered ${response.status}: ${text}`, {
    status: response.status,
    ...(response.headers.has('retry-after') && Number.isFinite(ra) && ra >= 0
      ? { retryAfter: ra }
      : {}),
  });
}
