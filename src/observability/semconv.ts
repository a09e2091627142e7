/**
 * OpenTelemetry semantic-convention attributes for the servers azscale talks to, so a tracing
 * backend groups azscale's spans with other clients of the same Redis, PostgreSQL or queue
 * (database conventions 1.26+: `db.system.name`, `db.namespace`; messaging conventions).
 */
import type { SpanAttributes } from './tracing.js';

/** `db.system.name: 'redis'` with the server's address and port when known (one node). */
export function redisSpanAttributes(address?: { host?: string; port?: number }): SpanAttributes {
  return {
    'db.system.name': 'redis',
    'server.address': address?.host,
    'server.port': address?.port,
  };
}

/** `db.system.name: 'postgresql'` with the node's address, port and database. */
export function postgresSpanAttributes(node: {
  host: string;
  port: number;
  database: string;
}): SpanAttributes {
  return {
    'db.system.name': 'postgresql',
    'server.address': node.host,
    'server.port': node.port,
    'db.namespace': node.database,
  };
}

/**
 * Messaging attributes of a queue operation: `messaging.system` (the backend: `redis` or
 * `memory`), `messaging.destination.name` (the queue), `messaging.operation.type` (`send` when
 * a task is submitted, `process` when a worker runs it), `messaging.message.id`, and for a
 * consumer `messaging.consumer.group.name`.
 */
export function messagingSpanAttributes(m: {
  system: string;
  destination: string;
  operation: 'send' | 'process' | 'receive' | 'settle';
  messageId?: string;
  consumerGroup?: string;
}): SpanAttributes {
  return {
    'messaging.system': m.system,
    'messaging.destination.name': m.destination,
    'messaging.operation.type': m.operation,
    'messaging.message.id': m.messageId,
    'messaging.consumer.group.name': m.consumerGroup,
  };
}
