/**
 * What a provider failure says about the provider. Clients report HTTP statuses differently
 * (AI SDK `statusCode`, OpenAI SDK and LangChain `status`, fetch `response.status`), so this reads
 * them all.
 */
import { isCircuitOpenError, isLLMProviderError, isTimeoutError } from '../core/errors.js';

function field(e: unknown, name: string): unknown {
  return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
}

/** The HTTP status of a provider error, when it carries one. */
export function statusOf(e: unknown): number | undefined {
  for (const name of ['statusCode', 'status']) {
    const v = field(e, name);
    if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v < 600) return v;
  }
  const res = field(e, 'response');
  const s = field(res, 'status');
  if (typeof s === 'number' && Number.isInteger(s)) return s;
  const cause = field(e, 'cause');
  return cause !== undefined && cause !== e ? statusOf(cause) : undefined;
}

/** Seconds from a `Retry-After` the error carries (AI SDK `responseHeaders`, fetch headers). */
export function retryAfterOf(e: unknown): number | undefined {
  const own = field(e, 'retryAfter');
  if (typeof own === 'number' && Number.isFinite(own) && own >= 0) return own;
  const candidates = [
    field(e, 'responseHeaders'),
    field(e, 'headers'),
    field(field(e, 'response'), 'headers'),
  ];
  for (const h of candidates) {
    let raw: unknown;
    if (h && typeof (h as { get?: unknown }).get === 'function') {
      raw = (h as { get(name: string): unknown }).get('retry-after');
    } else raw = field(h, 'retry-after');
    const n = Number(raw);
    if (raw !== undefined && raw !== null && Number.isFinite(n) && n >= 0) return n;
  }
  return undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

function isNetworkError(e: unknown, depth = 0): boolean {
  if (depth > 4 || typeof e !== 'object' || e === null) return false;
  const code = field(e, 'code');
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const name = field(e, 'name');
  if (name === 'TimeoutError') return true;
  if (e instanceof TypeError && /fetch failed|terminated|network/i.test(e.message)) return true;
  return isNetworkError(field(e, 'cause'), depth + 1);
}

/**
 * True for a failure that says the provider (not the request) is unwell: an open breaker, a
 * 408/429/5xx, a timeout, or a network error. These move a call to the next fallback model and
 * count against the model's breaker; a 400 (a bad prompt) does neither.
 */
export function isProviderFailure(e: unknown): boolean {
  if (isCircuitOpenError(e) || isTimeoutError(e)) return true;
  // Status 0: unreachable, or a stream that broke off.
  if (isLLMProviderError(e) && e.status === 0) return true;
  const status = statusOf(e);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  return isNetworkError(e);
}
