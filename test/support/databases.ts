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

/** An empty database (no bootstrap, no migrations) of its own on the test server. */
export async function emptyPostgres(template = "template1"): Promise<TestDatabase> {
  const name = `dms_test_${randomBytes(6).toString("hex")}`;
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
