// One line a person can act on when the database cannot be reached. Never the password: only the
// redacted URL and the server's own words (which do not contain it) are used.

/** The connection URL without its password (and without query options, which may hold secrets). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : "";
    return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable URL)";
  }
}

/** Rejects what is not a postgres:// URL before any driver sees it (drivers echo bad URLs). */
export function checkDatabaseUrl(url: string, variable: string): string | undefined {
  try {
    const parsed = new URL(url);
    if (!["postgres:", "postgresql:"].includes(parsed.protocol) || !parsed.hostname) {
      return `${variable} is not a postgresql:// URL`;
    }
    return undefined;
  } catch {
    return `${variable} is not a valid URL (special characters in the password must be percent-encoded)`;
  }
}

export function describeConnectionError(error: unknown, url: string): string {
  const target = redactUrl(url);
  const { code, message, severity } = (error ?? {}) as { code?: string; message?: string; severity?: string };
  switch (code) {
    case "ECONNREFUSED":
      return `cannot connect to ${target}: connection refused (is the server running?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot connect to ${target}: unknown host`;
    case "CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return `cannot connect to ${target}: timed out`;
    case "DATABASE_TIMEOUT":
      return `database at ${target}: ${message} (a lock held by another session, or a server or network that stopped answering?)`;
    case "SSL_NOT_SUPPORTED":
      return `cannot connect to ${target}: the server does not support SSL, and the URL requires it (${sslMode(url)}); ` +
        "use sslmode=disable for a local server without TLS, or enable SSL on the server";
    case "CONNECTION_CLOSED":
    case "ECONNRESET":
      return `cannot connect to ${target}: the server closed the connection (a pooler refusing, or not a Postgres server?)`;
    case "53300":
      return `cannot connect to ${target}: the server has too many connections (53300); lower DATABASE_POOL_SIZE or raise max_connections`;
    case "57P03":
      return `cannot connect to ${target}: the server is starting up or shutting down (57P03); try again shortly`;
    case "28P01":
    case "28000":
      return `cannot connect to ${target}: authentication failed (check the user and password)`;
    case "3D000":
      return `cannot connect to ${target}: the database does not exist`;
  }
  if (severity) return `database error at ${target}: ${message} (${code})`;
  return `cannot connect to ${target}: ${code ?? "unexpected error"}`;
}

function sslMode(url: string): string {
  try {
    const params = new URL(url).searchParams;
    const mode = params.get("sslmode") ?? (params.has("ssl") ? `ssl=${params.get("ssl")}` : null);
    return mode === null ? "ssl" : mode.startsWith("ssl=") ? mode : `sslmode=${mode}`;
  } catch {
    return "ssl";
  }
}
