import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { inject } from "vitest";
import type { Database } from "../../shared/db/database.ts";
import { connectPostgres } from "../../shared/db/postgres.ts";
import { openPglite } from "../../shared/db/pglite.ts";
import { supabaseBootstrapSql } from "../../shared/db/supabase-bootstrap.ts";
import { applyMigrations, readMigrations } from "../../shared/db/migrations.ts";
import { ADMIN_URL, databaseUrl } from "./postgres-urls.ts";

export interface TestDatabase {
  name: string;
  url: string;
  db: Database;
  drop(): Promise<void>;
}

async function admin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * An empty database (no bootstrap, no migrations) of its own on the test server, a copy of
 * `template`, named `dms_test_<runId>_<random>` so that the end of the run drops it (dropRunDatabases)
 * should the test never call drop(). `runId` is this run's (from the global setup) unless given.
 */
export async function emptyPostgres(template = "template1", runId = inject("testRunId")): Promise<TestDatabase> {
  const name = `dms_test_${checkedRunId(runId)}_${randomBytes(6).toString("hex")}`;
  await admin((sql) => sql.unsafe(`CREATE DATABASE ${name} TEMPLATE ${template}`));
  const url = databaseUrl(name);
  const db = connectPostgres(url, { max: 60 });
  return {
    name,
    url,
    db,
    drop: async () => {
      await db.close();
      await admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * Drops (WITH (FORCE): connections still open are cut) every database of run `runId`, the ones named
 * `dms_test_<runId>_...`, and returns their names. Other runs' databases, which may be in use by a
 * run going on beside this one, are left alone. Throws when `runId` is not lowercase letters and
 * digits (it goes into a LIKE pattern) or the server cannot be reached.
 */
export async function dropRunDatabases(runId: string): Promise<string[]> {
  const pattern = `dms\\_test\\_${checkedRunId(runId)}\\_%`; // "_" alone would match any character
  return admin(async (sql) => {
    const rows = await sql<{ datname: string }[]>`SELECT datname FROM pg_database WHERE datname LIKE ${pattern}`;
    for (const { datname } of rows) await sql.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    return rows.map((row) => row.datname);
  });
}

function checkedRunId(runId: string): string {
  if (!/^[a-z0-9]+$/.test(runId)) throw new Error(`a test run id is lowercase letters and digits, not ${JSON.stringify(runId)}`);
  return runId;
}

/** A fresh copy of the migrated template database. */
export function migratedPostgres(): Promise<TestDatabase> {
  return emptyPostgres(inject("templateDatabase"));
}

/** A PGlite (in memory, or in `dataDir`) with the Supabase bootstrap and every migration applied. */
export async function migratedPglite(dataDir?: string): Promise<Database> {
  const db = await openPglite(dataDir);
  await db.exec(supabaseBootstrapSql);
  await applyMigrations(db, await readMigrations());
  return db;
}
