import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError, isAzscaleError } from '../core/errors.js';
import { redactAddresses } from '../worker/queue.js';

/**
 * The page loads only its own script and stylesheet and talks only to its own API: no inline
 * script or style, no other origin, no framing, no forms posting elsewhere.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every dashboard response carries. */
export function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
}

/** Sends `body` as JSON, never cached (it is live state). */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  securityHeaders(res);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

const STATUS: Record<string, number> = {
  AZS_VALIDATION: 400,
  AZS_VALUE_TOO_LARGE: 413,
  AZS_SERIALIZATION: 400,
  AZS_FORBIDDEN: 403,
  AZS_NOT_FOUND: 404,
  AZS_CONFLICT: 409,
  AZS_CLOSED: 503,
  AZS_BACKEND_UNAVAILABLE: 503,
  AZS_TIMEOUT: 504,
};

/**
 * Sends an error as `{ error: { code, message } }`. Messages of azscale errors are kept (with
 * server addresses redacted); anything else becomes a bare 500 so no internal detail leaks.
 */
export function sendError(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isAzscaleError(e)) {
    const status = STATUS[e.code] ?? 500;
    const option = (e as { option?: unknown }).option;
    sendJson(res, status, {
      error: {
        code: e.code,
        message: redactAddresses(e.message),
        ...(typeof option === 'string' ? { option } : {}),
      },
    });
    return;
  }
  sendJson(res, 500, { error: { code: 'AZS_ERROR', message: 'internal error' } });
}

/** Largest request body accepted, in bytes (actions take a few small fields). */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * The JSON body of an action. A body a framework already parsed (`req.body` from
 * `express.json()`) is used as is; otherwise the stream is read, up to {@link MAX_BODY_BYTES}.
 */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parsed = (req as { body?: unknown }).body;
  if (parsed !== undefined && !(typeof parsed === 'string' || Buffer.isBuffer(parsed))) {
    return asObject(parsed);
  }
  let text: string;
  if (typeof parsed === 'string' || Buffer.isBuffer(parsed)) {
    text = String(parsed);
  } else {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) throw tooLarge();
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString('utf8');
  }
  if (text.length > MAX_BODY_BYTES) throw tooLarge();
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError('the request body is not valid JSON', { option: 'body' });
  }
  return asObject(value);
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('the request body must be a JSON object', { option: 'body' });
  }
  return value as Record<string, unknown>;
}

function tooLarge(): ValidationError {
  return new ValidationError(`the request body is larger than ${MAX_BODY_BYTES} bytes`, {
    option: 'body',
  });
}
