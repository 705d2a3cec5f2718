// Failures that mean "the database cannot be reached right now" (down, restarting, refusing, over
// its connection limit), as opposed to a bug in a query. They become 503, and the pool reconnects
// by itself on a later request once the database is back.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
]);

// SQLSTATE: 08 connection exceptions; 57P01-57P03 shutdown or start-up; 53300 too many connections.
const SERVER_CODES = /^(08...|57P0[123]|53300)$/;

export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (NETWORK_CODES.has(code) || SERVER_CODES.test(code));
}
