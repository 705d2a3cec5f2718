// Failures that mean "the database cannot serve right now" (down, restarting, refusing, over its
// connection limit, too slow, a pooler in front of it giving up), as opposed to a bug in a query.
// They become 503 database_unavailable with Retry-After; the pool reconnects by itself once the
// database is back.

/** A database operation that did not finish within its deadline (connecting, waiting for a pooled connection, a lock or a statement). */
export class DatabaseTimeout extends Error {
  override name = "DatabaseTimeout";
  readonly code = "DATABASE_TIMEOUT";
  constructor(readonly ms: number) {
    super(`the database did not answer within ${ms} ms`);
  }
}

// Socket-level failures (Node's errno codes) and postgres.js's own connection codes.
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "DATABASE_TIMEOUT",
  "SSL_NOT_SUPPORTED", // paced-socket.ts: the URL requires TLS, the server has none
]);

// SQLSTATE (PostgreSQL manual, appendix A "PostgreSQL Error Codes"):
//   08xxx connection exception; 53xxx insufficient resources (53300 too_many_connections);
//   57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57P04 database_dropped,
//   57P05 idle_session_timeout; 57014 query_canceled (our deadline, or the server's
//   statement_timeout); 55P03 lock_not_available (lock_timeout); 3D000 invalid_catalog_name (the
//   database does not exist); 28000/28P01 the server refuses the login; 25006 read_only (a standby
//   during a failover); 42P01 undefined_table, 3F000 invalid_schema_name, 42883 undefined_function:
//   the migrations are not pushed (GET /health then says `schema: missing`).
// XX000 internal_error: Supavisor, Supabase's pooler, sends every refusal of its own with it, in its
// own words ("Max client connections reached", "(ECHECKOUTTIMEOUT) checkout timeout ...",
// "(EDBHANDLEREXITED) connection to database closed ...", "Subscribe error: ...", "Tenant or user
// not found": https://supabase.com/docs/guides/database/supavisor); Postgres itself uses it for a
// failure inside the server. Neither is the request's fault, and a retry may well succeed.
const SERVER_CODES = /^(08...|53...|57P0[1-5]|57014|55P03|3D000|28000|28P01|25006|42P01|3F000|42883|XX000)$/;

/**
 * Whether an error from the database (or the pooler before it) means "unavailable, try again": a
 * socket failure, our deadline, one of the SQLSTATEs above (a Supavisor refusal among them), or
 * any error of severity FATAL or PANIC (the server ended the session, whatever the code says).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error === null || typeof error !== "object") return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  if (severity === "FATAL" || severity === "PANIC") return true;
  return typeof code === "string" && (NETWORK_CODES.has(code) || SERVER_CODES.test(code));
}
