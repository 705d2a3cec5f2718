// Before any test: is the test server there, recent enough, and may we make databases on it? When
// not, one line saying what to start or which variable to set (issue 8, fault 10), instead of a
// driver's stack trace followed by vitest's "No test files found".
import { checkDatabaseUrl, describeConnectionError, redactUrl } from "../../shared/db/connection-error.ts";
import { connectPostgres } from "../../shared/db/postgres.ts";

/** The oldest server the tests are written for (the project's CI and Supabase run 15 or newer). */
export const MIN_SERVER_VERSION = 15;

/**
 * Why the tests cannot use the server at `url`, as one line naming what to start or which
 * variable to set; null when they can (it answers, is PostgreSQL 15 or newer, and the user may
 * create databases). `fromVariable` says whether the URL came from TEST_DATABASE_URL (then that is
 * what to fix) or is the default (then the server is what to start). Waits at most `timeoutS`
 * seconds for the connection; never prints the password.
 */
export async function postgresProblem(url: string, fromVariable: boolean, timeoutS = 5): Promise<string | null> {
  const lead = `the tests need PostgreSQL ${MIN_SERVER_VERSION} or newer`;
  const fix = fromVariable
    ? "fix TEST_DATABASE_URL, or unset it to use postgresql://postgres@127.0.0.1:5432/postgres"
    : "start it (Debian: pg_ctlcluster 15 main start; any PostgreSQL 15+ on 127.0.0.1:5432 with " +
      "trust auth for user postgres will do), or set TEST_DATABASE_URL to a server of yours";
  const badUrl = checkDatabaseUrl(url, "TEST_DATABASE_URL");
  if (badUrl) return `${lead}: ${badUrl}`;
  // The project's own client: its deadline and paced reconnects keep a server that accepts and hangs
  // up from being flooded with connections while the check waits forever.
  const db = connectPostgres(url, { max: 1, connectTimeout: timeoutS, deadlineMs: timeoutS * 1000 });
  try {
    const [row] = await db.query<{ version: number; create: boolean }>(
      `SELECT current_setting('server_version_num')::int / 10000 AS version,
              (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS create`,
    );
    if (row!.version < MIN_SERVER_VERSION) {
      return `${lead}: ${redactUrl(url)} is PostgreSQL ${row!.version}; ${fix}`;
    }
    if (!row!.create) {
      return `${lead}: the user of ${redactUrl(url)} may not create databases (each test file makes its own); ${fix}`;
    }
    return null;
  } catch (error) {
    return `${lead}: ${describeConnectionError(error, url)}; ${fix}`;
  } finally {
    await db.close().catch(() => {});
  }
}
