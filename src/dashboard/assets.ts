import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { NotFoundError } from '../core/errors.js';
import { securityHeaders } from './http.js';
import { UI_ASSETS } from './ui-assets.js';

interface Prepared {
  type: string;
  raw: Buffer;
  gzip: Buffer;
  etag: string;
}

// Compressed once per process, on first use.
const prepared = new Map<string, Prepared>();

function prepare(name: string): Prepared | undefined {
  const hit = prepared.get(name);
  if (hit) return hit;
  const asset = UI_ASSETS.get(name);
  if (!asset) return undefined;
  const raw = Buffer.from(asset.body, 'utf8');
  const p = {
    type: asset.type,
    raw,
    gzip: gzipSync(raw, { level: 9 }),
    etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`,
  };
  prepared.set(name, p);
  return p;
}

/** Total gzipped size of the page's files, in bytes (the page is nothing else). */
export function uiGzipBytes(): number {
  let n = 0;
  for (const name of UI_ASSETS.keys()) n += prepare(name)?.gzip.length ?? 0;
  return n;
}

function send(req: IncomingMessage, res: ServerResponse, p: Prepared): void {
  securityHeaders(res);
  res.setHeader('Content-Type', p.type);
  res.setHeader('ETag', p.etag);
  // Revalidated on each load, so an upgrade of azscale shows at once.
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Vary', 'Accept-Encoding');
  if (req.headers['if-none-match'] === p.etag) {
    res.statusCode = 304;
    res.end();
    return;
  }
  const accept = req.headers['accept-encoding'];
  const gz = typeof accept === 'string' && /\bgzip\b/.test(accept);
  const body = gz ? p.gzip : p.raw;
  if (gz) res.setHeader('Content-Encoding', 'gzip');
  res.setHeader('Content-Length', body.length);
  res.statusCode = 200;
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The page itself. */
export function serveIndex(req: IncomingMessage, res: ServerResponse): void {
  send(req, res, prepare('index.html')!);
}

/**
 * A file of the page, looked up by exact name in a fixed table: no file system access, so no
 * request path (`..`, encoded slashes, `__proto__`) can reach anything else.
 */
export function serveAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
  const p = name === 'index.html' ? undefined : prepare(name);
  if (!p) throw new NotFoundError('no such dashboard asset');
  send(req, res, p);
}
