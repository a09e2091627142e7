import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What {@link trackConnections} returns. */
export interface ConnectionTracker {
  /**
   * Marks the answer each open connection is working on (not yet started) with
   * `Connection: close`, so the client reconnects elsewhere instead of reusing the socket.
   * Answers to requests that arrive later are the framework's business (Fastify closes those
   * itself once closing).
   */
  closeAfterInFlight(): void;
  /** Stops tracking (removes the listener; sockets already tracked are forgotten). */
  dispose(): void;
}

/**
 * Tracks a server's open HTTP/1 sockets, per connection rather than per request: the cost is one
 * Set entry and one `close` listener per TCP connection, nothing on the request path. The answer
 * a socket is busy with is `socket._httpMessage` (Node's own field, the one http-terminator and
 * stoppable read too); HTTP/2 sessions have none and are skipped.
 */
export function trackConnections(server: unknown): ConnectionTracker {
  const s = server as Partial<HttpServer> | null | undefined;
  if (typeof s?.on !== 'function' || typeof s.off !== 'function') {
    return { closeAfterInFlight() {}, dispose() {} };
  }
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  s.on('connection', onConnection);
  return {
    closeAfterInFlight() {
      for (const socket of sockets) {
        const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res && !res.headersSent && typeof res.setHeader === 'function') {
          res.setHeader('connection', 'close');
        }
      }
    },
    dispose() {
      s.off!('connection', onConnection);
      sockets.clear();
    },
  };
}
