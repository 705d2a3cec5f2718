import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Database, Queryable } from "./database.ts";

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

/** This repository's `supabase/migrations`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../supabase/migrations/", import.meta.url));

const FILE_NAME = /^(\d+)_(.+)\.sql$/;

/** The migrations in a Supabase `migrations` folder, oldest first, as the CLI orders them. */
export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => FILE_NAME.test(file)).sort();
  return Promise.all(files.map(async (file) => {
    const [, version, name] = FILE_NAME.exec(file)!;
    return { version: version!, name: name!, sql: await readFile(join(dir, file), "utf8") };
  }));
}

// The history table exactly as `supabase db push` creates it, so that the CLI can take over a
// database we migrated (and the other way round).
const HISTORY_DDL = `
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (
  version text NOT NULL PRIMARY KEY,
  statements text[],
  name text
);`;

/** Versions recorded as applied, oldest first; empty when the database has no history. */
export async function appliedVersions(db: Pick<Database, "query">): Promise<string[]> {
  const [history] = await db.query<{ exists: boolean }>(
    "SELECT to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS exists",
  );
  if (!history?.exists) return [];
  const rows = await db.query<{ version: string }>(
    "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version",
  );
  return rows.map((row) => row.version);
}

/**
 * Applies the migrations the database has not recorded, each in its own transaction with its
 * history row, and returns the versions applied. Refuses a database that has a migration this code
 * does not know: it was migrated by newer code, and running older code against it is unsafe.
 */
export async function applyMigrations(db: Database, migrations: Migration[]): Promise<string[]> {
  await serialized(db, (tx) => tx.exec(HISTORY_DDL));
  const recorded = await appliedVersions(db);
  refuseUnknown(recorded, migrations);
  const applied: string[] = [];
  // Recorded ones cost no transaction each, so starting on a migrated database stays cheap; the
  // check under the lock still catches a process that got there first.
  for (const migration of migrations.filter((m) => !recorded.includes(m.version))) {
    if (await serialized(db, (tx) => applyUnlessRecorded(tx, migration))) applied.push(migration.version);
  }
  return applied;
}

/**
 * Like applyMigrations, but all of it in one transaction, after `prepare(tx)` in the same one (the
 * Supabase bootstrap, say): the database ends up migrated, or, when anything fails, exactly as it
 * was, with no history table, schema, role or grant of ours left in it (Postgres DDL, CREATE ROLE
 * and GRANT included, is transactional; no migration here uses what is not: CREATE INDEX
 * CONCURRENTLY, VACUUM, ALTER SYSTEM, CREATE DATABASE). Returns the versions applied; same refusal.
 */
export async function applyMigrationsAtomically(
  db: Database,
  migrations: Migration[],
  prepare: (tx: Queryable) => Promise<void> = async () => {},
): Promise<string[]> {
  return await serialized(db, async (tx) => {
    await prepare(tx);
    await tx.exec(HISTORY_DDL);
    const recorded = await appliedVersions(tx);
    refuseUnknown(recorded, migrations);
    const pending = migrations.filter((m) => !recorded.includes(m.version));
    for (const migration of pending) await applyUnlessRecorded(tx, migration);
    return pending.map((m) => m.version);
  });
}

// Two processes migrating one database at once take turns; the second then finds the work done.
function serialized<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(8146020311)");
    return fn(tx);
  });
}

function refuseUnknown(recorded: string[], migrations: Migration[]): void {
  const known = new Set(migrations.map((m) => m.version));
  const unknown = recorded.filter((version) => !known.has(version));
  if (unknown.length > 0) {
    throw new MigrationError(
      `the database has migration ${unknown.at(-1)}, which this code does not know; ` +
        `update the code (newest known: ${migrations.at(-1)?.version ?? "none"})`,
    );
  }
}

async function applyUnlessRecorded(tx: Queryable, migration: Migration): Promise<boolean> {
  const [row] = await tx.query(
    "SELECT 1 FROM supabase_migrations.schema_migrations WHERE version = $1",
    [migration.version],
  );
  if (row) return false;
  await tx.exec(migration.sql);
  await tx.query(
    "INSERT INTO supabase_migrations.schema_migrations (version, statements, name) VALUES ($1, $2, $3)",
    [migration.version, [migration.sql], migration.name],
  );
  return true;
}
