// A throwaway migrated database on the local Postgres for one benchmark, dropped afterwards.
import { describeConnectionError } from "../shared/db/connection-error.ts";
import type { Database } from "../shared/db/database.ts";
import { applyMigrations, readMigrations } from "../shared/db/migrations.ts";
import { connectPostgres } from "../shared/db/postgres.ts";
import { supabaseBootstrapSql } from "../shared/db/supabase-bootstrap.ts";

const SERVER_URL = Deno.env.get("BENCH_DATABASE_URL") ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** Runs work on a fresh migrated database; prints a skip line instead when Postgres is not there. */
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
  try {
    await admin.exec(`CREATE DATABASE ${name}`);
    const db = connectPostgres(url.toString(), { max: 2 });
    try {
      await db.exec(supabaseBootstrapSql);
      await applyMigrations(db, await readMigrations());
      await work({ url: url.toString(), db });
    } finally {
      await db.close();
    }
  } finally {
    await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.close();
  }
}
