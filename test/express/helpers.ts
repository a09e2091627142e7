import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

/** Listens on 127.0.0.1 and resolves the base URL. */
export function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
  });
}

/** Closes a server, dropping its keep-alive connections. */
export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** The `name=value` part of a Set-Cookie header for `name`, or undefined. */
export function cookieOf(res: Response, name = 'connect.sid'): string | undefined {
  for (const c of res.headers.getSetCookie()) {
    if (c.startsWith(`${name}=`)) return c.split(';')[0];
  }
  return undefined;
}

/**
 * fetch that also reads the body: express-session sends all but the last byte of an answer
 * before its store's save completes, so a caller that stops at the headers races the save.
 */
export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ res: Response; status: number; body: unknown; cookie: string | undefined }> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { res, status: res.status, body, cookie: res.headers.getSetCookie()[0]?.split(';')[0] };
}
