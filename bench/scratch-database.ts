// A throwaway migrated database on the local Postgres for one benchmark, dropped afterwards: when
// the work ends, fails, or is interrupted by SIGINT/SIGTERM (see interruptible.ts).
import { describeConnectionError } from "../shared/db/connection-error.ts";
import type { Database } from "../shared/db/database.ts";
import { applyMigrations, readMigrations } from "../shared/db/migrations.ts";
import { connectPostgres } from "../shared/db/postgres.ts";
import { supabaseBootstrapSql } from "../shared/db/supabase-bootstrap.ts";
import { withCleanup } from "./interruptible.ts";

const SERVER_URL = Deno.env.get("BENCH_DATABASE_URL") ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/**
 * Runs work on a fresh migrated database named dms_bench_<12 hex digits>, the server's
 * (BENCH_DATABASE_URL, default the local Postgres as postgres); prints a skip line instead when
 * Postgres is not there.
 */
export async function withScratchDatabase(
  label: string,
  work: (database: { url: string; db: Database }) => Promise<void>,
): Promise<void> {
  const admin = connectPostgres(SERVER_URL, { max: 1, connectTimeout: 3 });
  try {
    await admin.query("SELECT 1");
  } catch (error) {
    console.log(`${label}: skipped, ${describeConnectionError(error, SERVER_URL)}`);
    await admin.close();
    return;
  }
  const name = `dms_bench_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  const drop = async () => {
    try {
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await admin.close();
    }
  };
  // Registered before the database exists: a signal while CREATE DATABASE runs still drops it.
  await withCleanup(drop, async () => {
    await admin.exec(`CREATE DATABASE ${name}`);
    const db = connectPostgres(url.toString(), { max: 2 });
    try {
      await db.exec(supabaseBootstrapSql);
      await applyMigrations(db, await readMigrations());
      await work({ url: url.toString(), db });
    } finally {
      await db.close();
    }
  });
}
