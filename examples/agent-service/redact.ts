/**
 * Text that leaves the service (a task's `error`, a readiness check's reason) must not tell a
 * client where the servers are: library messages name their target (`redis://10.0.0.5:6379`,
 * `connect ECONNREFUSED 10.0.0.7:5432`) because an operator needs that in the logs. Public
 * answers get this redacted form; the logs keep the original.
 */

// scheme://anything-up-to-whitespace-or-quote (credentials included).
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>()]+/gi;
// IPv4 with an optional port.
const IPV4_PATTERN = /\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g;
// Bracketed IPv6 with an optional port; bare IPv6: hex groups around "::", or five groups and more.
const IPV6_PATTERN =
  /\[[0-9a-f:.]+\](?::\d{1,5})?|(?:[0-9a-f]{1,4}:){4,7}[0-9a-f]{1,4}\b|[0-9a-f]{0,4}::[0-9a-f:]*/gi;
// host:port, e.g. redis-0.redis:6379 or localhost:6379 (a word with a dot or "localhost").
const HOST_PORT_PATTERN = /\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{1,5}\b/gi;

/** `text` with every URL, IP address and host:port replaced by `[redacted]`, at most 300 chars. */
export function redact(text: string): string {
  return (
    text
      .replace(URL_PATTERN, '[redacted]')
      // A bare "::" between words (Rust or C++ paths) is no address: require a digit.
      .replace(IPV6_PATTERN, (m) => (/\d/.test(m) ? '[redacted]' : m))
      .replace(IPV4_PATTERN, '[redacted]')
      .replace(HOST_PORT_PATTERN, '[redacted]')
      .slice(0, 300)
  );
}
